#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace deltatune {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

void sync_parent_directory(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& destination)
    : destination_(destination), temporary_(str_cat(destination, ".tmp.", ::getpid())) {
  file_ = std::fopen(temporary_.c_str(), "wb");
  if (!file_) fail("cannot create ", temporary_, ": ", errno_text(errno));
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) std::remove(temporary_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (bytes != 0 && std::fwrite(data, 1, bytes, file_) != bytes)
    fail("cannot write ", temporary_, ": ", errno_text(errno));
  written_ += bytes;
}

void AtomicFile::write_zeros(size_t bytes) {
  static const char zeros[256] = {};
  while (bytes > 0) {
    const size_t n = bytes < sizeof zeros ? bytes : sizeof zeros;
    write(zeros, n);
    bytes -= n;
  }
}

void AtomicFile::commit() {
  if (std::fflush(file_) != 0) fail("cannot write ", temporary_, ": ", errno_text(errno));
  if (::fsync(::fileno(file_)) != 0) fail("cannot sync ", temporary_, ": ", errno_text(errno));
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail("cannot close ", temporary_, ": ", errno_text(errno));
  if (std::rename(temporary_.c_str(), destination_.c_str()) != 0)
    fail("cannot rename ", temporary_, " to ", destination_, ": ", errno_text(errno));
  committed_ = true;
  sync_parent_directory(destination_);
}

}  // namespace deltatune
