// GgufValue: metadata values of every GGUF type, kept with their exact type.
#include <cstring>

#include "io/gguf.h"

namespace deltatune {

namespace {

// Bytes of one element of a fixed-size type (0 for STRING and ARRAY).
size_t fixed_size(GgufType type) {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

void check_type(GgufType want, GgufType have, const char* what) {
  if (want != have) fail("expected ", what, gguf_type_name(want), ", found ", gguf_type_name(have));
}

std::string quoted_prefix(const std::string& s) {
  return "'" + (s.size() <= 40 ? s : s.substr(0, 37) + "...") + "'";
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "str";
    case GgufType::ARRAY: return "arr";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "unknown";
}

template <class T>
GgufValue GgufValue::scalar(T value) {
  GgufValue v;
  v.type_ = gguf_type_of<T>();
  if constexpr (std::is_same_v<T, bool>) {
    v.scalar_ = value ? 1 : 0;
  } else {
    std::memcpy(&v.scalar_, &value, sizeof(T));
  }
  return v;
}

GgufValue GgufValue::string(std::string value) {
  GgufValue v;
  v.type_ = GgufType::STRING;
  v.string_ = std::move(value);
  return v;
}

template <class T>
GgufValue GgufValue::array(const std::vector<T>& values) {
  GgufValue v;
  v.type_ = GgufType::ARRAY;
  v.element_type_ = gguf_type_of<T>();
  v.packed_.resize(values.size() * sizeof(T));
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, bool>) {
      v.packed_[i] = values[i] ? 1 : 0;
    } else {
      std::memcpy(v.packed_.data() + i * sizeof(T), &values[i], sizeof(T));
    }
  }
  return v;
}

GgufValue GgufValue::array(std::vector<std::string> values) {
  GgufValue v;
  v.type_ = GgufType::ARRAY;
  v.element_type_ = GgufType::STRING;
  v.strings_ = std::move(values);
  return v;
}

GgufValue GgufValue::array_of_arrays(std::vector<GgufValue> arrays) {
  for (const GgufValue& a : arrays)
    DT_CHECK(a.is_array(), "an array of arrays holds a ", gguf_type_name(a.type()), " element");
  GgufValue v;
  v.type_ = GgufType::ARRAY;
  v.element_type_ = GgufType::ARRAY;
  v.arrays_ = std::move(arrays);
  return v;
}

GgufType GgufValue::element_type() const {
  DT_CHECK(is_array(), "expected an array, found ", gguf_type_name(type_));
  return element_type_;
}

size_t GgufValue::size() const {
  switch (element_type()) {
    case GgufType::STRING: return strings_.size();
    case GgufType::ARRAY: return arrays_.size();
    default: return packed_.size() / fixed_size(element_type_);
  }
}

template <class T>
T GgufValue::get() const {
  check_type(gguf_type_of<T>(), type_, "");
  if constexpr (std::is_same_v<T, bool>) {
    return scalar_ != 0;
  } else {
    T value;
    std::memcpy(&value, &scalar_, sizeof(T));
    return value;
  }
}

const std::string& GgufValue::get_string() const {
  check_type(GgufType::STRING, type_, "");
  return string_;
}

template <class T>
std::vector<T> GgufValue::get_array() const {
  check_type(gguf_type_of<T>(), element_type(), "an array of ");
  std::vector<T> out(size());
  for (size_t i = 0; i < out.size(); ++i) {
    if constexpr (std::is_same_v<T, bool>) {
      out[i] = packed_[i] != 0;
    } else {
      std::memcpy(&out[i], packed_.data() + i * sizeof(T), sizeof(T));
    }
  }
  return out;
}

const std::vector<std::string>& GgufValue::get_string_array() const {
  check_type(GgufType::STRING, element_type(), "an array of ");
  return strings_;
}

const std::vector<GgufValue>& GgufValue::get_array_of_arrays() const {
  check_type(GgufType::ARRAY, element_type(), "an array of ");
  return arrays_;
}

int64_t GgufValue::get_integer() const {
  switch (type_) {
    case GgufType::U8: return get<uint8_t>();
    case GgufType::I8: return get<int8_t>();
    case GgufType::U16: return get<uint16_t>();
    case GgufType::I16: return get<int16_t>();
    case GgufType::U32: return get<uint32_t>();
    case GgufType::I32: return get<int32_t>();
    case GgufType::I64: return get<int64_t>();
    case GgufType::U64: {
      const uint64_t u = get<uint64_t>();
      DT_CHECK(u <= uint64_t(INT64_MAX), "u64 value ", u, " is too large");
      return int64_t(u);
    }
    default: fail("expected an integer, found ", gguf_type_name(type_));
  }
}

std::string GgufValue::describe() const {
  switch (type_) {
    case GgufType::STRING: return "str " + quoted_prefix(string_);
    case GgufType::ARRAY: return str_cat("arr[", gguf_type_name(element_type_), ",", size(), "]");
    case GgufType::F32: return str_cat("f32 ", get<float>());
    case GgufType::F64: return str_cat("f64 ", get<double>());
    case GgufType::BOOL: return get<bool>() ? "bool true" : "bool false";
    case GgufType::U64: return str_cat("u64 ", get<uint64_t>());
    default: return str_cat(gguf_type_name(type_), " ", get_integer());
  }
}

#define DT_GGUF_INSTANTIATE(T)                                         \
  template GgufValue GgufValue::scalar<T>(T);                           \
  template GgufValue GgufValue::array<T>(const std::vector<T>&);        \
  template T GgufValue::get<T>() const;                                 \
  template std::vector<T> GgufValue::get_array<T>() const;
DT_GGUF_INSTANTIATE(uint8_t)
DT_GGUF_INSTANTIATE(int8_t)
DT_GGUF_INSTANTIATE(uint16_t)
DT_GGUF_INSTANTIATE(int16_t)
DT_GGUF_INSTANTIATE(uint32_t)
DT_GGUF_INSTANTIATE(int32_t)
DT_GGUF_INSTANTIATE(float)
DT_GGUF_INSTANTIATE(bool)
DT_GGUF_INSTANTIATE(uint64_t)
DT_GGUF_INSTANTIATE(int64_t)
DT_GGUF_INSTANTIATE(double)
#undef DT_GGUF_INSTANTIATE

const GgufValue* find_key(const GgufMetadata& metadata, std::string_view key) {
  for (const GgufKeyValue& kv : metadata)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

}  // namespace deltatune
