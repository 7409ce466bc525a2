// Reading GGUF: parse_gguf validates a whole file image; GgufFile maps a file and hands out
// zero-copy views. Every check names what it read and where, so a bad file reads as
// "x.gguf: tensor 3 ('blk.0.attn_q.weight'): data [64, 4160) runs past the end of the data
// section (1024 bytes)".
#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <tuple>
#include <unordered_set>

#include "io/gguf.h"

namespace deltatune {

static_assert(std::endian::native == std::endian::little, "GGUF is read in place as little-endian");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};

// Arrays of arrays: the spec allows them, ggml's own reader refuses them, and each costs far
// more memory than its 12 bytes in the file, so their depth and number are capped.
constexpr int kMaxArrayDepth = 8;
constexpr size_t kMaxNestedArrays = size_t(1) << 16;

// Smallest encodings, to refuse counts the remaining bytes cannot hold before looping over them.
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;      // key length, 1-byte key, type, u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;  // name length, name, n_dims, type, offset

size_t element_bytes(GgufType type) {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

uint64_t padded(uint64_t offset, uint64_t alignment) {
  return offset + (alignment - offset % alignment) % alignment;
}

std::string printable(const std::byte* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const char c = char(p[i]);
    s += c >= 0x20 && c < 0x7f ? c : '?';
  }
  return s;
}

}  // namespace

// Reads the file front to back; each read checks the bytes are there first.
class GgufParser {
 public:
  GgufParser(const std::byte* data, size_t size) : data_(data), size_(size) {}

  GgufHeader parse() {
    GgufHeader h;
    need(4, "the magic");
    if (std::memcmp(data_, kMagic, 4) != 0)
      fail("not a GGUF file: it starts with '", printable(data_, 4), "', not 'GGUF'");
    pos_ = 4;
    h.version = read<uint32_t>("the version");
    if ((h.version & 0xffffu) == 0 && h.version != 0)
      fail("version ", h.version, ": a big-endian GGUF file, which this reader does not support");
    if (h.version != 2 && h.version != 3)
      fail("GGUF version ", h.version, " is not supported (versions 2 and 3 share this layout)");
    const uint64_t n_tensors = read<uint64_t>("the tensor count");
    const uint64_t n_kv = read<uint64_t>("the metadata count");
    if (n_kv > remaining() / kMinKeyValueBytes)
      fail("the header claims ", n_kv, " metadata entries, more than the remaining ", remaining(),
           " bytes can hold");
    read_metadata(h, n_kv);
    if (n_tensors > remaining() / kMinTensorInfoBytes)
      fail("the header claims ", n_tensors, " tensors, more than the remaining ", remaining(),
           " bytes can hold");
    read_tensor_infos(h, n_tensors);
    place_data(h);
    return h;
  }

 private:
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail("truncated: ", what, " at offset ", pos_, " needs ", n, " bytes, only ", remaining(),
           " remain");
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    if (n > remaining())
      fail(what, " at offset ", pos_, " claims ", n, " bytes, only ", remaining(), " remain");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }

  GgufType read_type(const char* what) {
    const uint32_t t = read<uint32_t>(what);
    if (t > uint32_t(GgufType::F64)) fail("unknown value type ", t, " (", what, ")");
    return GgufType(t);
  }

  GgufValue read_value(GgufType type, int depth) {
    GgufValue v;
    v.type_ = type;
    if (type == GgufType::STRING) {
      v.string_ = read_string("a string value");
    } else if (type == GgufType::ARRAY) {
      read_array(v, depth);
    } else {
      const size_t n = element_bytes(type);
      need(n, "a scalar value");
      std::memcpy(&v.scalar_, data_ + pos_, n);
      pos_ += n;
    }
    return v;
  }

  void read_array(GgufValue& v, int depth) {
    if (depth >= kMaxArrayDepth) fail("arrays nested more than ", kMaxArrayDepth, " levels deep");
    v.element_type_ = read_type("the array's element type");
    const uint64_t count = read<uint64_t>("the array's length");
    const GgufType et = v.element_type_;
    const uint64_t min_bytes = et == GgufType::STRING ? 8 : et == GgufType::ARRAY ? 12 : element_bytes(et);
    if (count > remaining() / min_bytes)
      fail("an array of ", count, " ", gguf_type_name(et), " elements at offset ", pos_,
           " cannot fit in the remaining ", remaining(), " bytes");
    if (et == GgufType::STRING) {
      v.strings_.reserve(size_t(count));
      for (uint64_t i = 0; i < count; ++i)
        v.strings_.push_back(read_string("a string in an array"));
    } else if (et == GgufType::ARRAY) {
      nested_arrays_ += size_t(count);
      if (nested_arrays_ > kMaxNestedArrays)
        fail("more than ", kMaxNestedArrays, " arrays inside arrays");
      v.arrays_.reserve(size_t(count));
      for (uint64_t i = 0; i < count; ++i) v.arrays_.push_back(read_value(GgufType::ARRAY, depth + 1));
    } else {
      const uint64_t bytes = count * min_bytes;
      v.packed_.assign(reinterpret_cast<const uint8_t*>(data_ + pos_),
                       reinterpret_cast<const uint8_t*>(data_ + pos_ + bytes));
      pos_ += bytes;
    }
  }

  void read_metadata(GgufHeader& h, uint64_t n_kv) {
    std::unordered_set<std::string> seen;
    for (uint64_t i = 0; i < n_kv; ++i) {
      GgufKeyValue kv;
      kv.key = with_context(str_cat("metadata entry ", i), [&] { return read_string("the key"); });
      with_context(str_cat("metadata entry ", i, " ('", kv.key, "')"), [&] {
        if (kv.key.empty()) fail("the key is empty");
        if (!seen.insert(kv.key).second) fail("the key appears twice");
        kv.value = read_value(read_type("the value type"), 0);
      });
      h.metadata.push_back(std::move(kv));
    }
    if (const GgufValue* a = find_key(h.metadata, kGgufAlignmentKey)) {
      if (a->type() != GgufType::U32)
        fail(kGgufAlignmentKey, " must be a u32, found ", a->describe());
      h.alignment = a->get<uint32_t>();
      if (!std::has_single_bit(h.alignment))
        fail(kGgufAlignmentKey, " ", h.alignment, " is not a power of two");
    }
  }

  void read_tensor_infos(GgufHeader& h, uint64_t n_tensors) {
    std::unordered_set<std::string> seen;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      t.name = with_context(str_cat("tensor ", i), [&] { return read_string("the name"); });
      with_context(str_cat("tensor ", i, " ('", t.name, "')"), [&] { read_tensor_info(t, seen); });
      h.tensors.push_back(std::move(t));
    }
  }

  void read_tensor_info(GgufTensorInfo& t, std::unordered_set<std::string>& seen) {
    if (t.name.empty()) fail("the name is empty");
    if (t.name.size() > kGgufMaxTensorName)
      fail("the name has ", t.name.size(), " bytes; ggml allows at most ", kGgufMaxTensorName);
    if (!seen.insert(t.name).second) fail("the name appears twice");
    const uint32_t n_dims = read<uint32_t>("the dimension count");
    if (n_dims > kGgufMaxDims) fail(n_dims, " dimensions; ggml allows at most ", kGgufMaxDims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = read<uint64_t>("a dimension");
      if (n > uint64_t(INT64_MAX)) fail("dimension ", d, " is ", n, ", more than int64 holds");
      t.ne.push_back(int64_t(n));
      if (__builtin_mul_overflow(elements, n, &elements) || elements > uint64_t(INT64_MAX))
        fail("ne ", shape_str(t.ne), ": the element count overflows");
    }
    const uint32_t type = read<uint32_t>("the ggml type");
    const GgmlTypeInfo* info = ggml_type_info(type);
    if (!info) fail("unknown ggml type ", type);
    t.type = info->type;
    const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
    if (ne0 % info->block_size != 0)
      fail("rows of ", ne0, " elements are not whole ", info->name, " blocks of ", info->block_size);
    if (elements / info->block_size > UINT64_MAX / info->type_size)
      fail("ne ", shape_str(t.ne), ": the byte size overflows");
    t.nbytes = elements / info->block_size * info->type_size;
    t.offset = read<uint64_t>("the data offset");
  }

  // The data section starts at the first aligned offset after the tensor infos; every tensor
  // must lie inside it, aligned, and apart from the others.
  void place_data(GgufHeader& h) {
    h.data_offset = padded(pos_, h.alignment);
    if (h.tensors.empty()) return;
    if (h.data_offset > size_)
      fail("the data section would start at offset ", h.data_offset, ", past the end of the file (",
           size_, " bytes)");
    const uint64_t data_bytes = size_ - h.data_offset;
    for (size_t i = 0; i < h.tensors.size(); ++i) {
      const GgufTensorInfo& t = h.tensors[i];
      with_context(str_cat("tensor ", i, " ('", t.name, "')"), [&] {
        if (t.offset % h.alignment != 0)
          fail("data offset ", t.offset, " is not a multiple of the alignment ", h.alignment);
        if (t.offset > data_bytes || t.nbytes > data_bytes - t.offset)
          fail("data [", t.offset, ", ", t.offset, " + ", t.nbytes,
               ") runs past the end of the data section (", data_bytes, " bytes)");
      });
    }
    std::vector<const GgufTensorInfo*> by_offset;
    for (const GgufTensorInfo& t : h.tensors)
      if (t.nbytes > 0) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
      return std::tie(a->offset, a->nbytes, a->name) < std::tie(b->offset, b->nbytes, b->name);
    });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const GgufTensorInfo* a = by_offset[i - 1];
      const GgufTensorInfo* b = by_offset[i];
      if (b->offset < a->offset + a->nbytes)
        fail("tensors '", a->name, "' [", a->offset, ", ", a->offset + a->nbytes, ") and '", b->name,
             "' [", b->offset, ", ", b->offset + b->nbytes, ") overlap");
    }
  }

  const std::byte* data_;
  size_t size_;
  uint64_t pos_ = 0;
  size_t nested_arrays_ = 0;
};

GgufHeader parse_gguf(const std::byte* data, size_t size) { return GgufParser(data, size).parse(); }

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return bool(in.read(magic, 4)) && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile::GgufFile(const std::string& path)
    : file_(path), header_(with_context(path, [&] { return parse_gguf(file_.data(), file_.size()); })) {
  for (size_t i = 0; i < header_.metadata.size(); ++i) key_index_.emplace(header_.metadata[i].key, i);
  for (size_t i = 0; i < header_.tensors.size(); ++i) tensor_index_.emplace(header_.tensors[i].name, i);
}

const GgufValue* GgufFile::find_key(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &header_.metadata[it->second].value;
}

const GgufValue& GgufFile::get_key(std::string_view key) const {
  const GgufValue* v = find_key(key);
  if (!v) fail(path(), ": no metadata key '", key, "'");
  return *v;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &header_.tensors[it->second];
}

const GgufTensorInfo& GgufFile::get_tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail(path(), ": no tensor '", name, "'");
  return *t;
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return {file_.data() + header_.data_offset + info.offset, size_t(info.nbytes)};
}

Tensor GgufFile::tensor(const GgufTensorInfo& info) const {
  return with_context(str_cat(path(), ": tensor '", info.name, "'"), [&] {
    const auto dtype = ggml_type_to_dtype(info.type);
    if (!dtype)
      fail("a ", ggml_type_name(info.type), " tensor has no element view; decode its blocks instead");
    const uint64_t offset = header_.data_offset + info.offset;
    // In-place elements must be aligned to their size; ggml's 32-byte default guarantees it, a
    // file with general.alignment 1 or 2 may not.
    if (info.nbytes > 0 && offset % dtype_size(*dtype) != 0)
      fail("data at file offset ", offset, " is not aligned to its ", dtype_size(*dtype), "-byte elements");
    void* data = const_cast<std::byte*>(file_.data() + offset);  // read-only: never written through
    return Tensor::contiguous(data, *dtype, info.shape());
  });
}

std::vector<float> GgufFile::tensor_to_float(const GgufTensorInfo& info) const {
  return with_context(str_cat(path(), ": tensor '", info.name, "'"), [&] {
    int64_t n = 1;
    for (int64_t d : info.ne) n *= d;
    std::vector<float> out(static_cast<size_t>(n));
    ggml_decode(tensor_bytes(info).data(), n, info.type, out.data());
    return out;
  });
}

}  // namespace deltatune
