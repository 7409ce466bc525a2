// Writing a file so that readers see either the old file or the whole new one: the bytes go to a
// temporary file beside the destination (`path`.tmp.<pid>), which is synced and renamed over it
// only when complete. Used by the safetensors and GGUF writers.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace deltatune {

// A file being written beside its destination: closed and removed unless committed, so a failed
// write leaves neither a partial file nor a stray temporary.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& destination);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write_zeros(size_t bytes);
  uint64_t bytes_written() const { return written_; }
  // Data on disk first, then the name: a crash leaves either the old file or the whole new one.
  // The rename is then made durable too (best effort: some file systems refuse fsync on a folder).
  void commit();

 private:
  std::string destination_, temporary_;
  std::FILE* file_ = nullptr;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace deltatune
