#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_set>

#include "io/atomic_file.h"

namespace deltatune {

namespace {

using nlohmann::json;

// The safetensors libraries refuse headers above 100 MB; so do we, so that a corrupt length
// prefix cannot make us treat gigabytes of tensor data as JSON.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

std::string errno_text(int err) { return std::strerror(err); }

// nlohmann's dump() recurses once per level of nesting, and a hostile header can nest a value
// millions of levels deep (its parser and destructor do not recurse).
bool nests_at_most(const json& v, int levels) {
  if (!v.is_structured()) return true;
  if (levels == 0) return false;
  for (const json& child : v)
    if (!nests_at_most(child, levels - 1)) return false;
  return true;
}

// A JSON value for a message: short, because a hostile header can hold megabytes in one value.
std::string short_dump(const json& v) {
  constexpr int kMaxLevels = 8;
  if (!nests_at_most(v, kMaxLevels))
    return str_cat(v.type_name(), " nested more than ", kMaxLevels, " levels deep");
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() <= 40 ? s : s.substr(0, 37) + "...";
}

struct ParsedJson {
  json value;
  std::vector<std::string> top_level_keys;  // in file order: json objects are sorted maps
};

// nlohmann's parser silently keeps the last of two equal keys; in a checkpoint that would make one
// of two tensors (or one of two "dtype"s) vanish, so the parser callback tracks the keys of every
// open object and refuses a repeat.
ParsedJson parse_json_without_duplicate_keys(std::string_view text) {
  ParsedJson out;
  std::vector<std::unordered_set<std::string>> open_objects;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) {
        if (depth == 1) fail("name '", key, "' appears twice");
        fail("key '", key, "' appears twice in one object");
      }
      if (depth == 1) out.top_level_keys.push_back(key);
    }
    return true;
  };
  try {
    out.value = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    // nlohmann quotes the token it stopped at, which can be an unterminated 100 MB string.
    const std::string what = e.what();
    fail("invalid JSON: ", what.size() <= 200 ? what : what.substr(0, 197) + "...");
  }
  return out;
}

// A size or offset: a JSON integer >= 0 (nlohmann reads those as unsigned, other integers as
// signed, everything else as float).
uint64_t read_size(const json& v, const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= 0) return uint64_t(i);
    fail(what, " is negative: ", i);
  }
  fail(what, " is not an integer: ", short_dump(v));
}

// Bytes of a tensor, or nullopt when they do not fit. The element count without its zero
// dimensions must also fit in int64: Tensor computes strides (partial products) in int64.
std::optional<uint64_t> byte_size(DType dtype, const std::vector<int64_t>& shape) {
  uint64_t nonzero_elements = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d == 0)
      empty = true;
    else if (__builtin_mul_overflow(nonzero_elements, uint64_t(d), &nonzero_elements) ||
             nonzero_elements > uint64_t(INT64_MAX))
      return std::nullopt;
  }
  uint64_t bytes = 0;
  if (!empty && __builtin_mul_overflow(nonzero_elements, dtype_size(dtype), &bytes))
    return std::nullopt;
  return bytes;
}

const json& field(const json& entry, const char* key) {
  const auto it = entry.find(key);
  if (it == entry.end()) fail("missing '", key, "'");
  return *it;
}

SafetensorsEntry parse_entry(const std::string& name, const json& v, uint64_t data_bytes) {
  if (!v.is_object()) fail("is not an object but ", v.type_name());
  SafetensorsEntry e;
  e.name = name;

  const json& dtype = field(v, "dtype");
  if (!dtype.is_string()) fail("'dtype' is not a string: ", short_dump(dtype));
  const auto parsed_dtype = dtype_from_name(dtype.get_ref<const std::string&>());
  if (!parsed_dtype) fail("unknown dtype ", short_dump(dtype));
  e.dtype = *parsed_dtype;

  const json& shape = field(v, "shape");
  if (!shape.is_array()) fail("'shape' is not an array: ", short_dump(shape));
  for (const json& d : shape) {
    const uint64_t n = read_size(d, "a dimension of 'shape'");
    if (n > uint64_t(INT64_MAX)) fail("dimension ", n, " of 'shape' is too large");
    e.shape.push_back(int64_t(n));
  }

  const json& offsets = field(v, "data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    fail("'data_offsets' is not an array [begin, end]: ", short_dump(offsets));
  e.begin = read_size(offsets[0], "'data_offsets' begin");
  e.end = read_size(offsets[1], "'data_offsets' end");
  const std::string range = str_cat("data_offsets [", e.begin, ", ", e.end, "]");
  if (e.begin > e.end) fail(range, ": begin is after end");
  if (e.end > data_bytes)
    fail(range, " run past the end of the data section (", data_bytes, " bytes)");

  const auto needed = byte_size(e.dtype, e.shape);
  if (!needed)
    fail("shape ", shape_str(e.shape), " of ", dtype_name(e.dtype),
         " is too large: its size overflows");
  if (*needed != e.end - e.begin)
    fail(range, " but shape ", shape_str(e.shape), " of ", dtype_name(e.dtype), " needs ", *needed,
         " bytes");
  return e;
}

// Two tensors sharing bytes would alias each other's data; empty tensors own no bytes.
void check_no_overlap(const std::vector<SafetensorsEntry>& tensors) {
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& e : tensors)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* a = by_offset[i - 1];
    const auto* b = by_offset[i];
    if (b->begin < a->end)
      fail("tensors '", a->name, "' [", a->begin, ", ", a->end, "] and '", b->name, "' [", b->begin,
           ", ", b->end, "] overlap");
  }
}

std::map<std::string, std::string> parse_metadata(const json& v) {
  if (!v.is_object()) fail("'", kMetadataKey, "' is not an object but ", v.type_name());
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string())
      fail("'", kMetadataKey, "' value of '", key, "' is not a string: ", short_dump(value));
    metadata.emplace(key, value.get<std::string>());
  }
  return metadata;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const std::byte* data, size_t size) {
  if (size < 8)
    fail("only ", size, " bytes: a safetensors file starts with an 8-byte header length");
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | uint64_t(data[i]);
  if (header_bytes > kMaxHeaderBytes)
    fail("header length ", header_bytes, " exceeds the safetensors limit of ", kMaxHeaderBytes,
         " bytes");
  if (header_bytes > size - 8)
    fail("header length ", header_bytes, " runs past the end of the file (", size, " bytes)");

  SafetensorsHeader header;
  header.data_offset = 8 + header_bytes;
  const uint64_t data_bytes = size - header.data_offset;
  const auto parsed = with_context("header", [&] {
    return parse_json_without_duplicate_keys(
        std::string_view(reinterpret_cast<const char*>(data) + 8, header_bytes));
  });
  if (!parsed.value.is_object()) fail("header is not a JSON object but ", parsed.value.type_name());
  for (const std::string& key : parsed.top_level_keys) {
    const json& value = parsed.value.at(key);
    if (key == kMetadataKey) {
      header.metadata = parse_metadata(value);
    } else {
      header.tensors.push_back(with_context(str_cat("tensor '", key, "'"),
                                            [&] { return parse_entry(key, value, data_bytes); }));
    }
  }
  check_no_overlap(header.tensors);
  return header;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(path), header_(with_context(path, [&] {
        return parse_safetensors_header(file_.data(), file_.size());
      })) {
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_.emplace(header_.tensors[i].name, i);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry* entry = find(name);
  if (!entry) fail(path(), ": no tensor '", name, "'");
  return tensor(*entry);
}

Tensor SafetensorsFile::tensor(const SafetensorsEntry& entry) const {
  return with_context(str_cat(path(), ": tensor '", entry.name, "'"), [&] {
    const uint64_t offset = header_.data_offset + entry.begin;
    // A view is read in place as float, uint16_t, ...: misaligned elements would be undefined
    // behaviour. The safetensors library pads the header to 8 bytes and lays the data out by
    // descending element size, so files it writes (and ours) always pass.
    const size_t element_bytes = dtype_size(entry.dtype);
    if (entry.end > entry.begin && offset % element_bytes != 0)
      fail("data at file offset ", offset, " is not aligned to its ", element_bytes, "-byte ",
           dtype_name(entry.dtype), " elements; re-save the file with the safetensors library");
    // The mapping is read-only: the view must not be written through.
    void* data = const_cast<std::byte*>(file_.data() + offset);
    return Tensor::contiguous(data, entry.dtype, entry.shape);
  });
}

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", errno_text(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(path, ": cannot read");
  return text.str();
}

// weight_map of model.safetensors.index.json: tensor name -> shard file name (beside the index).
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  const std::string text = read_text_file(index_path);
  return with_context(index_path, [&] {
    const json index = parse_json_without_duplicate_keys(text).value;
    if (!index.is_object()) fail("not a JSON object");
    const auto it = index.find("weight_map");
    if (it == index.end() || !it->is_object()) fail("no 'weight_map' object");
    std::map<std::string, std::string> weight_map;
    for (const auto& [name, file] : it->items()) {
      if (!file.is_string())
        fail("weight_map: '", name, "' maps to a non-string ", short_dump(file));
      weight_map.emplace(name, file.get<std::string>());
    }
    return weight_map;
  });
}

}  // namespace

TensorStore::TensorStore(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> shard_names;  // as the index writes them, parallel to files_
  std::optional<std::map<std::string, std::string>> weight_map;
  std::string index_path;
  if (!fs::is_directory(path, ec)) {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
  } else if (const fs::path single = fs::path(path) / "model.safetensors"; fs::exists(single, ec)) {
    // transformers also prefers model.safetensors when a folder holds both.
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
  } else if (fs::exists(fs::path(path) / "model.safetensors.index.json", ec)) {
    index_path = (fs::path(path) / "model.safetensors.index.json").string();
    weight_map = read_weight_map(index_path);
    std::set<std::string> shards;
    for (const auto& [name, shard] : *weight_map) shards.insert(shard);
    for (const std::string& shard : shards) {
      with_context(str_cat(index_path, ": shard '", shard, "'"), [&] {
        files_.push_back(std::make_unique<SafetensorsFile>((fs::path(path) / shard).string()));
      });
      shard_names.push_back(shard);
    }
  } else {
    fail(path, ": neither model.safetensors nor model.safetensors.index.json in this folder");
  }

  for (size_t i = 0; i < files_.size(); ++i) {
    for (const SafetensorsEntry& entry : files_[i]->entries()) {
      const auto [it, added] = where_.emplace(entry.name, std::pair(i, &entry));
      if (!added)
        fail(path, ": tensor '", entry.name, "' is in both ", files_[it->second.first]->path(),
             " and ", files_[i]->path());
    }
  }
  if (!weight_map) return;
  // The index and the shards must agree both ways: a tensor the index does not place where it is
  // would be loaded by us but not by transformers, or the other way round.
  for (const auto& [name, place] : where_) {
    const auto listed = weight_map->find(name);
    const std::string& shard = shard_names[place.first];
    if (listed == weight_map->end())
      fail(index_path, ": tensor '", name, "' is in shard '", shard, "' but not in the weight_map");
    if (listed->second != shard)
      fail(index_path, ": tensor '", name, "' is in shard '", shard, "' but the weight_map names '",
           listed->second, "'");
  }
  for (const auto& [name, shard] : *weight_map)
    if (!where_.count(name))
      fail(index_path, ": weight_map names shard '", shard, "' for tensor '", name,
           "' but that shard lacks it");
}

std::optional<Tensor> TensorStore::find(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) return std::nullopt;
  return files_[it->second.first]->tensor(*it->second.second);
}

Tensor TensorStore::get(const std::string& name) const {
  auto t = find(name);
  if (!t) fail("tensor '", name, "' not found in checkpoint ", path_);
  return *t;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> names;
  names.reserve(where_.size());
  for (const auto& [name, place] : where_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const std::string& TensorStore::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail("tensor '", name, "' not found in checkpoint ", path_);
  return files_[it->second.first]->path();
}

namespace {

// The header text: entries in the caller's order, offsets as planned, "__metadata__" first when
// there is any (as the Python library writes it), padded with spaces to a multiple of 8 bytes so
// the data section starts aligned.
std::string header_text(const std::vector<NamedTensor>& tensors,
                        const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
                        const std::map<std::string, std::string>& metadata) {
  // nlohmann escapes the strings (and refuses invalid UTF-8, which no reader would accept).
  auto quoted = [](const std::string& s) {
    try {
      return json(s).dump();
    } catch (const json::exception&) {
      fail("name or metadata not valid UTF-8: ",
           json(s).dump(-1, ' ', false, json::error_handler_t::replace));
    }
  };
  std::string text = "{";
  if (!metadata.empty()) {
    text += quoted(kMetadataKey) + ":{";
    for (const auto& [key, value] : metadata) text += quoted(key) + ":" + quoted(value) + ",";
    text.back() = '}';
    text += ",";
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].tensor;
    text += quoted(tensors[i].name) + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":[";
    for (int d = 0; d < t.ndim; ++d) {
      if (d) text += ',';
      text += std::to_string(t.shape[size_t(d)]);
    }
    text += str_cat("],\"data_offsets\":[", ranges[i].first, ",", ranges[i].second, "]},");
  }
  if (text.back() == ',') text.pop_back();
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void check_writable(const std::vector<NamedTensor>& tensors) {
  std::unordered_set<std::string> seen;
  for (const NamedTensor& named : tensors) {
    const Tensor& t = named.tensor;
    with_context(str_cat("tensor '", named.name, "'"), [&] {
      if (named.name == kMetadataKey) fail("the name is reserved for metadata");
      if (!seen.insert(named.name).second) fail("the name appears twice");
      if (t.device != Device::CPU) fail("not in host memory");
      for (int d = 0; d < t.ndim; ++d)
        if (t.shape[size_t(d)] < 0) fail("negative dimension in shape ", t.shape_str());
      if (!t.is_contiguous()) fail("not contiguous");
      if (t.data == nullptr && t.numel() != 0) fail("no data");
    });
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  with_context(path, [&] {
    check_writable(tensors);
    // The data goes by descending element size (stable), as the Python library orders it: with
    // the header padded to 8 bytes every tensor then starts aligned to its elements, and the
    // ranges stay packed without gaps (which the Rust reader would reject).
    std::vector<size_t> data_order(tensors.size());
    for (size_t i = 0; i < data_order.size(); ++i) data_order[i] = i;
    std::stable_sort(data_order.begin(), data_order.end(), [&](size_t a, size_t b) {
      return dtype_size(tensors[a].tensor.dtype) > dtype_size(tensors[b].tensor.dtype);
    });
    std::vector<std::pair<uint64_t, uint64_t>> ranges(tensors.size());
    uint64_t offset = 0;
    for (size_t i : data_order) {
      ranges[i] = {offset, offset + tensors[i].tensor.nbytes()};
      offset = ranges[i].second;
    }
    const std::string header = header_text(tensors, ranges, metadata);
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));

    AtomicFile out(path);
    out.write(length, sizeof length);
    out.write(header.data(), header.size());
    for (size_t i : data_order) out.write(tensors[i].tensor.data, tensors[i].tensor.nbytes());
    out.commit();
  });
}

}  // namespace deltatune
