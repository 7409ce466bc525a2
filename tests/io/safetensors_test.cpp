// safetensors: round trips through write_safetensors and SafetensorsFile, zero-copy views, the
// layout the writer produces, checkpoints in one file or in shards, and atomic writing.
#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "io/test_files.h"

namespace deltatune {
namespace {

using test::error_of;
using testing::HasSubstr;

constexpr DType kAllDTypes[] = {DType::F64,     DType::F32,     DType::F16, DType::BF16,
                                DType::F8_E4M3, DType::F8_E5M2, DType::I64, DType::I32,
                                DType::I16,     DType::I8,      DType::U8,  DType::BOOL};

// Random bytes, whatever the element type: the file must carry them unchanged (NaN patterns too).
HostTensor random_tensor(DType dtype, std::initializer_list<int64_t> shape, Rng& rng) {
  HostTensor t(dtype, shape);
  auto* bytes = static_cast<uint8_t*>(t.view().data);
  for (size_t i = 0; i < t.view().nbytes(); ++i) bytes[i] = uint8_t(rng.next_u64());
  return t;
}

void expect_same_tensor(const Tensor& got, const Tensor& want, const std::string& name) {
  EXPECT_EQ(got.dtype, want.dtype) << name;
  EXPECT_EQ(got.shape_vector(), want.shape_vector()) << name;
  ASSERT_EQ(got.nbytes(), want.nbytes()) << name;
  EXPECT_EQ(std::memcmp(got.data, want.data, want.nbytes()), 0) << name << ": bytes differ";
}

std::vector<std::string> files_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Safetensors, RoundTripsEveryDtype) {
  test::ScratchDir dir;
  Rng rng(1);
  std::vector<HostTensor> owned;
  std::vector<NamedTensor> tensors;
  for (DType dtype : kAllDTypes) {
    owned.push_back(random_tensor(dtype, {3, 5}, rng));
    tensors.push_back({str_cat("t.", dtype_name(dtype)), owned.back().view()});
  }
  owned.push_back(random_tensor(DType::F32, {}, rng));  // a scalar
  tensors.push_back({"scalar", owned.back().view()});
  owned.push_back(random_tensor(DType::BF16, {0, 4}, rng));  // empty
  tensors.push_back({"empty", owned.back().view()});
  const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                       {"note", "a \"quoted\" é"}};

  const std::string path = dir.file("all.safetensors");
  write_safetensors(path, tensors, metadata);
  SafetensorsFile file(path);
  ASSERT_EQ(file.entries().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(file.entries()[i].name, tensors[i].name) << "entries keep the written order";
    expect_same_tensor(file.tensor(tensors[i].name), tensors[i].tensor, tensors[i].name);
  }
  EXPECT_EQ(file.metadata(), metadata);
}

TEST(Safetensors, ViewsPointIntoTheMapping) {
  test::ScratchDir dir;
  Rng rng(2);
  const HostTensor weight = random_tensor(DType::BF16, {4, 6}, rng);
  const std::string path = dir.file("model.safetensors");
  write_safetensors(path, {{"w", weight.view()}});
  SafetensorsFile file(path);
  const Tensor view = file.tensor("w");
  EXPECT_EQ(view.dtype, DType::BF16) << "bf16 stays bf16";
  const MappedFile& mapping = file.mapping();
  const uint64_t data_offset = parse_safetensors_header(mapping.data(), mapping.size()).data_offset;
  EXPECT_EQ(static_cast<const std::byte*>(view.data),
            mapping.data() + data_offset + file.find("w")->begin);
  EXPECT_EQ(file.tensor("w").data, view.data) << "no copy per call";
  EXPECT_EQ(file.find("absent"), nullptr);
  EXPECT_THAT(error_of([&] { file.tensor("absent"); }), HasSubstr(path + ": no tensor 'absent'"));
}

TEST(Safetensors, WriterLayout) {
  // Header in the given order, padded with spaces to 8 bytes; data packed by descending element
  // size so every view is aligned even when the given order would misalign them.
  test::ScratchDir dir;
  Rng rng(3);
  const HostTensor bytes = random_tensor(DType::U8, {3}, rng);
  const HostTensor halves = random_tensor(DType::BF16, {3}, rng);
  const HostTensor floats = random_tensor(DType::F32, {3}, rng);
  const HostTensor doubles = random_tensor(DType::F64, {1}, rng);
  const std::string path = dir.file("mixed.safetensors");
  write_safetensors(path,
                    {{"u8", bytes.view()},
                     {"bf16", halves.view()},
                     {"f32", floats.view()},
                     {"f64", doubles.view()}},
                    {{"format", "pt"}});

  const std::string raw = test::read_bytes(path);
  const SafetensorsHeader header =
      parse_safetensors_header(reinterpret_cast<const std::byte*>(raw.data()), raw.size());
  EXPECT_EQ(header.data_offset % 8, 0u);
  const std::string text = raw.substr(8, header.data_offset - 8);
  EXPECT_EQ(text.rfind(R"({"__metadata__":{"format":"pt"},"u8":{"dtype":"U8","shape":[3],)", 0), 0u)
      << text;
  EXPECT_EQ(text.find_last_not_of(' '), text.find_last_of('}')) << "only spaces after the JSON";

  std::vector<std::string> names;
  for (const auto& e : header.tensors) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"u8", "bf16", "f32", "f64"}));
  using Range = std::pair<uint64_t, uint64_t>;
  auto range = [&](size_t i) { return Range(header.tensors[i].begin, header.tensors[i].end); };
  EXPECT_EQ(range(3), Range(0, 8));
  EXPECT_EQ(range(2), Range(8, 20));
  EXPECT_EQ(range(1), Range(20, 26));
  EXPECT_EQ(range(0), Range(26, 29));
  EXPECT_EQ(raw.size(), header.data_offset + 29) << "no gaps, nothing after the data";

  SafetensorsFile file(path);
  for (const auto& entry : file.entries()) {
    const Tensor view = file.tensor(entry);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view.data) % dtype_size(view.dtype), 0u) << entry.name;
  }
}

TEST(Safetensors, WriterRefusesWhatItCannotWrite) {
  test::ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  HostTensor matrix(DType::F32, {2, 3});
  Tensor transposed = matrix.view();
  std::swap(transposed.shape[0], transposed.shape[1]);
  std::swap(transposed.strides[0], transposed.strides[1]);
  EXPECT_THAT(error_of([&] {
                write_safetensors(path, {{"t", transposed}});
              }),
              HasSubstr(path + ": tensor 't': not contiguous"));
  EXPECT_THAT(error_of([&] {
                write_safetensors(path, {{"a", matrix.view()}, {"a", matrix.view()}});
              }),
              HasSubstr("tensor 'a': the name appears twice"));
  EXPECT_THAT(error_of([&] {
                write_safetensors(path, {{"__metadata__", matrix.view()}});
              }),
              HasSubstr("reserved"));
  Tensor on_gpu = matrix.view();
  on_gpu.device = Device::CUDA;
  EXPECT_THAT(error_of([&] {
                write_safetensors(path, {{"g", on_gpu}});
              }),
              HasSubstr("tensor 'g': not in host memory"));
  EXPECT_THAT(error_of([&] {
                write_safetensors(path, {{"bad \xff name", matrix.view()}});
              }),
              HasSubstr("not valid UTF-8"));
  EXPECT_TRUE(files_in(dir.path()).empty());
  EXPECT_THAT(error_of([&] { write_safetensors(dir.file("no/such/dir/x.safetensors"), {}); }),
              HasSubstr("cannot create"));
}

TEST(Safetensors, WriterReplacesAtomically) {
  test::ScratchDir dir;
  Rng rng(4);
  const std::string path = dir.file("adapter.safetensors");
  const HostTensor first = random_tensor(DType::F32, {8}, rng);
  const HostTensor second = random_tensor(DType::F32, {16}, rng);
  write_safetensors(path, {{"x", first.view()}});
  write_safetensors(path, {{"x", second.view()}});
  expect_same_tensor(SafetensorsFile(path).tensor("x"), second.view(), "x");
  EXPECT_EQ(files_in(dir.path()), std::vector<std::string>{"adapter.safetensors"})
      << "no temporary left behind";

  // The rename fails (a folder is in the way): an error, and the temporary is gone.
  std::filesystem::create_directory(dir.file("taken"));
  std::filesystem::create_directory(dir.file("taken/inside"));
  EXPECT_THAT(error_of([&] {
                write_safetensors(dir.file("taken"), {{"x", first.view()}});
              }),
              HasSubstr("cannot rename"));
  EXPECT_EQ(files_in(dir.path()), (std::vector<std::string>{"adapter.safetensors", "taken"}));
}

// RLIMIT_FSIZE makes the kernel refuse writes past a size with EFBIG, as a full disk refuses them
// with ENOSPC: a deterministic stand-in for running out of space. SIGXFSZ, which would kill the
// process, is ignored meanwhile.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = signal(SIGXFSZ, SIG_IGN);
    rlimit limited = saved_;
    limited.rlim_cur = bytes;
    EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit saved_{};
  sighandler_t previous_handler_;
};

TEST(Safetensors, WriteFailureKeepsThePreviousFile) {
  test::ScratchDir dir;
  Rng rng(5);
  const std::string path = dir.file("model.safetensors");
  const HostTensor small = random_tensor(DType::F32, {4}, rng);
  write_safetensors(path, {{"w", small.view()}});
  const std::string before = test::read_bytes(path);

  const HostTensor large = random_tensor(DType::F32, {1 << 18}, rng);  // 1 MiB
  std::string message;
  {
    FileSizeLimit limit(64 << 10);
    message = error_of([&] { write_safetensors(path, {{"w", large.view()}}); });
  }
  EXPECT_THAT(message, HasSubstr(path + ": cannot write " + path + ".tmp."));
  EXPECT_THAT(message, HasSubstr("File too large"));
  EXPECT_EQ(test::read_bytes(path), before) << "the previous file is intact";
  EXPECT_EQ(files_in(dir.path()), std::vector<std::string>{"model.safetensors"})
      << "the temporary is removed";
}

}  // namespace
}  // namespace deltatune
