// libFuzzer target: parse_safetensors_header on arbitrary bytes must return or throw Error, never
// crash or trip ASan/UBSan. What it accepts must also be safe to use: every tensor's bytes lie
// inside the input (libFuzzer's buffer is exactly `size` bytes, so ASan catches a read past it)
// and a view of it can be built. Run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  deltatune::SafetensorsHeader header;
  try {
    header = deltatune::parse_safetensors_header(bytes, size);
  } catch (const deltatune::Error&) {
    return 0;
  }
  volatile std::byte sink;
  for (const auto& entry : header.tensors) {
    if (entry.begin > entry.end || entry.end > size - header.data_offset) __builtin_trap();
    if (entry.end > entry.begin) {
      sink = bytes[header.data_offset + entry.begin];
      sink = bytes[header.data_offset + entry.end - 1];
    }
    try {
      const auto view = deltatune::Tensor::contiguous(const_cast<std::byte*>(bytes), entry.dtype,
                                                      entry.shape);
      if (view.nbytes() != entry.end - entry.begin) __builtin_trap();
    } catch (const deltatune::Error&) {  // more dimensions than a Tensor holds
    }
  }
  (void)sink;
  return 0;
}
