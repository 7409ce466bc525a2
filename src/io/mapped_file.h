// A read-only memory mapping of a whole file: the readers of checkpoint formats (safetensors,
// GGUF) parse it in place and hand out zero-copy views into it.
#pragma once

#include <cstddef>
#include <string>

namespace deltatune {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace deltatune
