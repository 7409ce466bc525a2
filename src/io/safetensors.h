// safetensors: read (mmap, zero-copy views) and write (atomic: temporary file, then rename).
// Format (spec/formats.md): u64 little-endian header length N, N bytes of JSON
//   {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the data; offsets are relative to the end of the header.
// Every malformed file is rejected with an Error naming the file and the problem, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "io/mapped_file.h"

namespace deltatune {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;  // byte offsets relative to the start of the data section
  uint64_t end;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset;  // 8 + header length: where the data section starts in the file
};

// Parses and validates the header of a whole safetensors file held in memory (`size` bytes): the
// length prefix, the JSON, every entry's dtype, shape, offsets (inside the data, in order, not
// overlapping, matching the shape's byte size), duplicate names. Throws Error (without the file
// name: callers add it). This is the function the fuzzer drives.
SafetensorsHeader parse_safetensors_header(const std::byte* data, size_t size);

// One mapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return file_.path(); }
  const std::vector<SafetensorsEntry>& entries() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const SafetensorsEntry* find(const std::string& name) const;
  // A zero-copy view into the (read-only) mapping; throws if absent, or if the data is not aligned
  // to its element size (files from old writers).
  Tensor tensor(const std::string& name) const;
  Tensor tensor(const SafetensorsEntry& entry) const;
  const MappedFile& mapping() const { return file_; }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string, size_t> index_;
};

// All tensors of a checkpoint: a single .safetensors file, or a folder holding model.safetensors or
// a sharded model.safetensors.index.json (weight_map: tensor -> shard file). A name found twice
// (in two shards, or in a shard the index does not name for it) is an error.
class TensorStore {
 public:
  // `path`: a .safetensors file or a folder.
  explicit TensorStore(const std::string& path);
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  std::optional<Tensor> find(const std::string& name) const;
  // Throws an Error naming the tensor and the checkpoint when absent.
  Tensor get(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::string& path() const { return path_; }
  // The file that holds `name` (for messages).
  const std::string& file_of(const std::string& name) const;
  // The files, in shard order (one for an unsharded checkpoint).
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, std::pair<size_t, const SafetensorsEntry*>> where_;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;  // host, contiguous
};

// Writes tensors and metadata to `path` atomically: the bytes go to a temporary file beside it
// (`path`.tmp.<pid>), which is synced and renamed over `path` only when complete; on failure the
// temporary is removed and an existing `path` is left as it was. The header lists the tensors in
// the given order; the data section holds them packed, by descending element size (stable), so
// that each starts aligned to its elements, as the Python library writes them.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace deltatune
