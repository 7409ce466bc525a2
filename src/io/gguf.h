// GGUF v3 (spec/formats.md; llama.cpp ggml/include/gguf.h, ggml/src/gguf.cpp, gguf-py
// gguf_writer.py): read (mmap, zero-copy tensor views) and write (atomic: temporary file, then
// rename). Layout, all little-endian:
//   "GGUF", u32 version, u64 tensor count, u64 metadata count,
//   metadata: (string key, u32 value type, value)...     string = u64 length + UTF-8 bytes,
//                                                        array  = u32 element type, u64 count, elements
//   tensor infos: (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type,
//                  u64 offset into the data section)...
//   zero padding to `general.alignment` (u32, default 32), then the data section; every tensor's
//   offset is a multiple of the alignment.
// Every malformed file is refused with an Error naming the file and the problem, never a crash, and
// nothing is allocated beyond a small multiple of the file's size.
// Values: gguf_value.cpp; reading: gguf_read.cpp; writing: gguf_write.cpp; ggml's tensor types and
// their encodings: ggml_types.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "io/ggml_types.h"
#include "io/mapped_file.h"

namespace deltatune {

class AtomicFile;

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
// "u8", "i32", "f32", "bool", "str", "arr", ... (ggml's gguf_type_name spelling).
const char* gguf_type_name(GgufType type);

// The GgufType of a C++ scalar: uint8_t -> U8, ..., bool -> BOOL, double -> F64.
template <class T>
constexpr GgufType gguf_type_of();
template <> constexpr GgufType gguf_type_of<uint8_t>() { return GgufType::U8; }
template <> constexpr GgufType gguf_type_of<int8_t>() { return GgufType::I8; }
template <> constexpr GgufType gguf_type_of<uint16_t>() { return GgufType::U16; }
template <> constexpr GgufType gguf_type_of<int16_t>() { return GgufType::I16; }
template <> constexpr GgufType gguf_type_of<uint32_t>() { return GgufType::U32; }
template <> constexpr GgufType gguf_type_of<int32_t>() { return GgufType::I32; }
template <> constexpr GgufType gguf_type_of<float>() { return GgufType::F32; }
template <> constexpr GgufType gguf_type_of<bool>() { return GgufType::BOOL; }
template <> constexpr GgufType gguf_type_of<uint64_t>() { return GgufType::U64; }
template <> constexpr GgufType gguf_type_of<int64_t>() { return GgufType::I64; }
template <> constexpr GgufType gguf_type_of<double>() { return GgufType::F64; }

// One metadata value: a scalar of any type, a string, or an array of any of these (arrays of
// arrays too: the spec allows them, although ggml's reader refuses them).
class GgufValue {
 public:
  GgufValue() = default;
  template <class T>
  static GgufValue scalar(T value);
  static GgufValue string(std::string value);
  template <class T>
  static GgufValue array(const std::vector<T>& values);
  static GgufValue array(std::vector<std::string> values);
  // An array whose elements are arrays (each any GgufValue of type ARRAY).
  static GgufValue array_of_arrays(std::vector<GgufValue> arrays);

  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::ARRAY; }
  GgufType element_type() const;  // of an array
  size_t size() const;            // elements of an array

  // The value, if it has exactly this type; an Error naming both types otherwise.
  template <class T>
  T get() const;
  const std::string& get_string() const;
  template <class T>
  std::vector<T> get_array() const;
  const std::vector<std::string>& get_string_array() const;
  const std::vector<GgufValue>& get_array_of_arrays() const;
  // Any integer scalar (u8..i64), as int64 when it fits; an Error otherwise.
  int64_t get_integer() const;

  // "u32 7", "str 'qwen35'", "arr[str,151936]": short, for messages and listings.
  std::string describe() const;
  bool operator==(const GgufValue& other) const = default;

 private:
  friend class GgufParser;
  GgufType type_ = GgufType::U8;
  GgufType element_type_ = GgufType::U8;  // arrays
  uint64_t scalar_ = 0;                   // numeric and bool scalars: their bytes, zero-extended
  std::string string_;
  std::vector<uint8_t> packed_;           // arrays of numbers or bools, as stored in the file
  std::vector<std::string> strings_;      // arrays of strings
  std::vector<GgufValue> arrays_;         // arrays of arrays
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};
using GgufMetadata = std::vector<GgufKeyValue>;  // in file order
const GgufValue* find_key(const GgufMetadata& metadata, std::string_view key);

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;  // ggml order: innermost (contiguous) dimension first
  uint64_t offset = 0;      // bytes from the start of the data section
  uint64_t nbytes = 0;
  // Row-major shape, outermost first (ne reversed): a PyTorch [out, in] weight is ne {in, out}.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

constexpr uint32_t kGgufVersion = 3;
constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr const char* kGgufAlignmentKey = "general.alignment";
// ggml keeps tensor names in char[GGML_MAX_NAME = 64] with the terminating zero, and tensors of
// at most GGML_MAX_DIMS = 4 dimensions (ggml/include/ggml.h).
constexpr size_t kGgufMaxTensorName = 63;
constexpr size_t kGgufMaxDims = 4;

struct GgufHeader {
  uint32_t version = kGgufVersion;
  GgufMetadata metadata;
  std::vector<GgufTensorInfo> tensors;  // in file order
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;  // where the data section starts in the file
};

// Parses and validates a whole GGUF file held in memory: magic, version (2 or 3; big-endian files
// refused), every metadata value, general.alignment, every tensor info (name, dimensions, type,
// the byte size and its overflow), offsets (aligned, inside the file, not overlapping), duplicate
// keys and names. Throws Error (without the file name: callers add it). The fuzzer drives this.
GgufHeader parse_gguf(const std::byte* data, size_t size);

// Does the file at `path` start with GGUF's magic?
bool is_gguf_file(const std::string& path);

// One mapped GGUF file.
class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  const std::string& path() const { return file_.path(); }
  const GgufHeader& header() const { return header_; }
  const GgufMetadata& metadata() const { return header_.metadata; }
  const std::vector<GgufTensorInfo>& tensors() const { return header_.tensors; }

  const GgufValue* find_key(std::string_view key) const;
  // Throws an Error naming the file and the key when absent.
  const GgufValue& get_key(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  const GgufTensorInfo& get_tensor(std::string_view name) const;

  // The tensor's bytes in the (read-only) mapping.
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& info) const;
  // A zero-copy row-major view of a tensor of a plain type (F32, F16, BF16, F64, I8..I64);
  // throws for block-quantized types (read them with tensor_bytes and ggml_decode).
  Tensor tensor(const GgufTensorInfo& info) const;
  Tensor tensor(std::string_view name) const { return tensor(get_tensor(name)); }
  // Any F32, F16, BF16 or Q8_0 tensor decoded to float, row-major.
  std::vector<float> tensor_to_float(const GgufTensorInfo& info) const;

 private:
  MappedFile file_;
  GgufHeader header_;
  std::unordered_map<std::string_view, size_t> key_index_, tensor_index_;
};

// What a tensor will be in a file being written: name, type and ne (innermost first).
struct GgufTensorPlan {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;
};
// Bytes of a tensor of this type and ne; throws when ne0 is not a whole number of blocks.
uint64_t gguf_tensor_bytes(GgmlType type, const std::vector<int64_t>& ne);

// Writes a GGUF file atomically, streaming the tensor data: the constructor checks everything
// (keys and names unique and non-empty, names at most 63 bytes, at most 4 dimensions, whole
// blocks per row, general.alignment a u32 power of two) and writes the header, metadata and
// tensor infos; write_data then takes the tensors' bytes in plan order, in as many pieces as the
// caller likes, padding each to the alignment as in gguf-py's writer, and commit() renames the
// finished file into place. Destroying the writer before commit() leaves any existing file at
// `path` untouched.
class GgufWriter {
 public:
  GgufWriter(const std::string& path, const GgufMetadata& metadata, std::vector<GgufTensorPlan> tensors);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  void write_data(const void* bytes, size_t n);
  // The tensor whose bytes come next (tensors().size() once all are written).
  size_t next_tensor() const { return current_; }
  const std::vector<GgufTensorPlan>& tensors() const { return tensors_; }
  void commit();

 private:
  void finish_complete_tensors();
  std::string path_;
  std::vector<GgufTensorPlan> tensors_;
  std::vector<uint64_t> sizes_;
  uint64_t alignment_ = kGgufDefaultAlignment;
  size_t current_ = 0;
  uint64_t written_in_current_ = 0;
  std::unique_ptr<AtomicFile> file_;
};

struct GgufTensorData {
  GgufTensorPlan plan;
  const void* data = nullptr;  // gguf_tensor_bytes(plan.type, plan.ne) bytes
};
// The whole file at once.
void write_gguf(const std::string& path, const GgufMetadata& metadata,
                const std::vector<GgufTensorData>& tensors);

}  // namespace deltatune
