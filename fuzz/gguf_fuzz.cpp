// libFuzzer target: parse_gguf on arbitrary bytes must return or throw Error, never crash, trip
// ASan/UBSan or allocate past libFuzzer's memory limit. What it accepts must be safe to use: every
// tensor's bytes lie inside the input (libFuzzer's buffer is exactly `size` bytes, so ASan catches
// a read past it), and every metadata value reads back through its typed accessor. Run by
// scripts/fuzz.sh gguf.
#include <cstddef>
#include <cstdint>

#include "io/gguf.h"

namespace {

volatile size_t sink;

void touch(const deltatune::GgufValue& v) {
  using deltatune::GgufType;
  sink = v.describe().size();
  if (!v.is_array()) return;
  switch (v.element_type()) {
    case GgufType::STRING: for (const auto& s : v.get_string_array()) sink = s.size(); break;
    case GgufType::ARRAY: for (const auto& a : v.get_array_of_arrays()) touch(a); break;
    case GgufType::BOOL: sink = v.get_array<bool>().size(); break;
    default: sink = v.size(); break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  deltatune::GgufHeader header;
  try {
    header = deltatune::parse_gguf(bytes, size);
  } catch (const deltatune::Error&) {
    return 0;
  }
  for (const auto& kv : header.metadata) touch(kv.value);
  for (const auto& t : header.tensors) {
    if (t.nbytes == 0) continue;
    if (header.data_offset > size || t.offset > size - header.data_offset ||
        t.nbytes > size - header.data_offset - t.offset)
      __builtin_trap();
    sink = size_t(bytes[header.data_offset + t.offset]);
    sink = size_t(bytes[header.data_offset + t.offset + t.nbytes - 1]);
  }
  return 0;
}
