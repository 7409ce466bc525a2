// Writing GGUF in the layout gguf-py's GGUFWriter produces (write_header_to_file,
// write_kv_data_to_file, write_ti_data_to_file, write_tensors_to_file): header, metadata, tensor
// infos with offsets packed in order, zero padding to the alignment, then each tensor's bytes
// followed by zero padding to the alignment. ggml's reader requires exactly this packing (each
// offset equals the padded sizes of the tensors before it: ggml/src/gguf.cpp).
#include <bit>
#include <cstring>
#include <unordered_set>

#include "io/atomic_file.h"
#include "io/gguf.h"

namespace deltatune {

namespace {

uint64_t padded(uint64_t offset, uint64_t alignment) {
  return offset + (alignment - offset % alignment) % alignment;
}

template <class T>
void put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, const GgufValue& v, bool with_type);

void put_array_body(std::string& out, const GgufValue& v) {
  put<uint32_t>(out, uint32_t(v.element_type()));
  put<uint64_t>(out, v.size());
  switch (v.element_type()) {
    case GgufType::STRING:
      for (const std::string& s : v.get_string_array()) put_string(out, s);
      return;
    case GgufType::ARRAY:
      for (const GgufValue& a : v.get_array_of_arrays()) put_array_body(out, a);
      return;
    default:
      break;
  }
  // Numbers and bools: every element, little-endian, through the typed accessor.
  switch (v.element_type()) {
#define DT_PUT_ARRAY(E, T)                          \
  case GgufType::E:                                 \
    for (T x : v.get_array<T>()) put<T>(out, x);    \
    return;
    DT_PUT_ARRAY(U8, uint8_t)
    DT_PUT_ARRAY(I8, int8_t)
    DT_PUT_ARRAY(U16, uint16_t)
    DT_PUT_ARRAY(I16, int16_t)
    DT_PUT_ARRAY(U32, uint32_t)
    DT_PUT_ARRAY(I32, int32_t)
    DT_PUT_ARRAY(F32, float)
    DT_PUT_ARRAY(U64, uint64_t)
    DT_PUT_ARRAY(I64, int64_t)
    DT_PUT_ARRAY(F64, double)
#undef DT_PUT_ARRAY
    case GgufType::BOOL:
      for (bool x : v.get_array<bool>()) put<uint8_t>(out, x ? 1 : 0);
      return;
    default:
      fail("cannot write an array of ", gguf_type_name(v.element_type()));
  }
}

void put_value(std::string& out, const GgufValue& v, bool with_type) {
  if (with_type) put<uint32_t>(out, uint32_t(v.type()));
  switch (v.type()) {
    case GgufType::STRING: put_string(out, v.get_string()); return;
    case GgufType::ARRAY: put_array_body(out, v); return;
    case GgufType::U8: put(out, v.get<uint8_t>()); return;
    case GgufType::I8: put(out, v.get<int8_t>()); return;
    case GgufType::U16: put(out, v.get<uint16_t>()); return;
    case GgufType::I16: put(out, v.get<int16_t>()); return;
    case GgufType::U32: put(out, v.get<uint32_t>()); return;
    case GgufType::I32: put(out, v.get<int32_t>()); return;
    case GgufType::F32: put(out, v.get<float>()); return;
    case GgufType::BOOL: put<uint8_t>(out, v.get<bool>() ? 1 : 0); return;
    case GgufType::U64: put(out, v.get<uint64_t>()); return;
    case GgufType::I64: put(out, v.get<int64_t>()); return;
    case GgufType::F64: put(out, v.get<double>()); return;
  }
}

uint64_t alignment_of(const GgufMetadata& metadata) {
  const GgufValue* a = find_key(metadata, kGgufAlignmentKey);
  if (!a) return kGgufDefaultAlignment;
  DT_CHECK(a->type() == GgufType::U32, kGgufAlignmentKey, " must be a u32, not ", a->describe());
  const uint32_t alignment = a->get<uint32_t>();
  DT_CHECK(std::has_single_bit(alignment), kGgufAlignmentKey, " ", alignment, " is not a power of two");
  return alignment;
}

void check_metadata(const GgufMetadata& metadata) {
  std::unordered_set<std::string> keys;
  for (const GgufKeyValue& kv : metadata) {
    DT_CHECK(!kv.key.empty(), "a metadata key is empty");
    DT_CHECK(keys.insert(kv.key).second, "metadata key '", kv.key, "' appears twice");
  }
}

void check_tensor(const GgufTensorPlan& t, std::unordered_set<std::string>& names) {
  with_context(str_cat("tensor '", t.name, "'"), [&] {
    DT_CHECK(!t.name.empty(), "the name is empty");
    DT_CHECK(t.name.size() <= kGgufMaxTensorName, "the name has ", t.name.size(),
             " bytes; ggml allows at most ", kGgufMaxTensorName);
    DT_CHECK(names.insert(t.name).second, "the name appears twice");
    DT_CHECK(t.ne.size() <= kGgufMaxDims, t.ne.size(), " dimensions; ggml allows at most ", kGgufMaxDims);
    for (int64_t d : t.ne) DT_CHECK(d >= 0, "negative dimension in ne ", shape_str(t.ne));
    gguf_tensor_bytes(t.type, t.ne);
  });
}

}  // namespace

uint64_t gguf_tensor_bytes(GgmlType type, const std::vector<int64_t>& ne) {
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) {
    DT_CHECK(!__builtin_mul_overflow(rows, uint64_t(ne[d]), &rows), "ne ", shape_str(ne), " overflows");
  }
  const uint64_t row = ggml_row_bytes(type, ne.empty() ? 1 : ne[0]);
  uint64_t bytes = 0;
  DT_CHECK(!__builtin_mul_overflow(rows, row, &bytes), "ne ", shape_str(ne), " overflows");
  return bytes;
}

GgufWriter::GgufWriter(const std::string& path, const GgufMetadata& metadata,
                       std::vector<GgufTensorPlan> tensors)
    : path_(path), tensors_(std::move(tensors)) {
  with_context(path, [&] {
    check_metadata(metadata);
    alignment_ = alignment_of(metadata);
    std::unordered_set<std::string> names;
    for (const GgufTensorPlan& t : tensors_) check_tensor(t, names);

    std::string head;
    head.append("GGUF", 4);
    put<uint32_t>(head, kGgufVersion);
    put<uint64_t>(head, tensors_.size());
    put<uint64_t>(head, metadata.size());
    for (const GgufKeyValue& kv : metadata) {
      put_string(head, kv.key);
      put_value(head, kv.value, true);
    }
    uint64_t offset = 0;
    for (const GgufTensorPlan& t : tensors_) {
      put_string(head, t.name);
      put<uint32_t>(head, uint32_t(t.ne.size()));
      for (int64_t d : t.ne) put<uint64_t>(head, uint64_t(d));
      put<uint32_t>(head, uint32_t(t.type));
      put<uint64_t>(head, offset);
      sizes_.push_back(gguf_tensor_bytes(t.type, t.ne));
      offset += padded(sizes_.back(), alignment_);
    }
    head.append(padded(head.size(), alignment_) - head.size(), '\0');
    file_ = std::make_unique<AtomicFile>(path);
    file_->write(head.data(), head.size());
    finish_complete_tensors();
  });
}

GgufWriter::~GgufWriter() = default;

// Pads every tensor whose bytes are all written (and skips empty ones).
void GgufWriter::finish_complete_tensors() {
  while (current_ < tensors_.size() && written_in_current_ == sizes_[current_]) {
    file_->write_zeros(padded(sizes_[current_], alignment_) - sizes_[current_]);
    ++current_;
    written_in_current_ = 0;
  }
}

void GgufWriter::write_data(const void* bytes, size_t n) {
  const auto* p = static_cast<const std::byte*>(bytes);
  while (n > 0) {
    DT_CHECK(current_ < tensors_.size(), path_, ": ", n, " bytes of data beyond the last tensor");
    const uint64_t take = std::min<uint64_t>(n, sizes_[current_] - written_in_current_);
    file_->write(p, take);
    written_in_current_ += take;
    p += take;
    n -= take;
    finish_complete_tensors();
  }
}

void GgufWriter::commit() {
  if (current_ < tensors_.size())
    fail(path_, ": tensor '", tensors_[current_].name, "' got ", written_in_current_, " of its ",
         sizes_[current_], " bytes");
  with_context(path_, [&] { file_->commit(); });
}

void write_gguf(const std::string& path, const GgufMetadata& metadata,
                const std::vector<GgufTensorData>& tensors) {
  std::vector<GgufTensorPlan> plans;
  for (const GgufTensorData& t : tensors) plans.push_back(t.plan);
  GgufWriter writer(path, metadata, std::move(plans));
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t bytes = gguf_tensor_bytes(tensors[i].plan.type, tensors[i].plan.ne);
    DT_CHECK(bytes == 0 || tensors[i].data != nullptr, path, ": tensor '", tensors[i].plan.name, "' has no data");
    writer.write_data(tensors[i].data, bytes);
  }
  writer.commit();
}

}  // namespace deltatune
