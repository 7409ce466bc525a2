// TensorStore: a checkpoint as one file, a folder with model.safetensors, or shards listed by
// model.safetensors.index.json; and the ways shards and index can disagree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/test_files.h"

namespace deltatune {
namespace {

using test::error_of;
using testing::HasSubstr;

// Small tensors with distinct contents: tensor k holds k*16, k*16 + 1, ...
class Checkpoint {
 public:
  NamedTensor make(const std::string& name, int64_t n) {
    owned_.emplace_back(DType::F32, std::initializer_list<int64_t>{n});
    for (int64_t i = 0; i < n; ++i) owned_.back().ptr<float>()[i] = float(owned_.size() * 16 + i);
    return {name, owned_.back().view()};
  }

 private:
  std::vector<HostTensor> owned_;
};

void write_index(const std::string& path, const std::map<std::string, std::string>& weight_map) {
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  test::write_bytes(path, index.dump(2));
}

// Two shards and their index: a, b in the first; c in the second.
struct ShardedCheckpoint {
  test::ScratchDir dir;
  Checkpoint data;
  NamedTensor a = data.make("a", 3), b = data.make("b", 5), c = data.make("c", 2);
  std::map<std::string, std::string> weight_map = {{"a", "model-00001-of-00002.safetensors"},
                                                   {"b", "model-00001-of-00002.safetensors"},
                                                   {"c", "model-00002-of-00002.safetensors"}};
  ShardedCheckpoint() {
    write_safetensors(dir.file("model-00001-of-00002.safetensors"), {a, b});
    write_safetensors(dir.file("model-00002-of-00002.safetensors"), {c});
  }
  std::string index() const { return dir.file("model.safetensors.index.json"); }
  std::string load_error() const {
    write_index(index(), weight_map);
    return error_of([&] { TensorStore store(dir.path().string()); });
  }
};

void expect_holds(const TensorStore& store, const NamedTensor& want) {
  const Tensor got = store.get(want.name);
  ASSERT_EQ(got.shape_vector(), want.tensor.shape_vector()) << want.name;
  EXPECT_EQ(std::memcmp(got.data, want.tensor.data, want.tensor.nbytes()), 0) << want.name;
}

TEST(TensorStore, LoadsShardsThroughTheIndex) {
  ShardedCheckpoint ckpt;
  write_index(ckpt.index(), ckpt.weight_map);
  TensorStore store(ckpt.dir.path().string());
  EXPECT_EQ(store.names(), (std::vector<std::string>{"a", "b", "c"}));
  for (const auto& t : {ckpt.a, ckpt.b, ckpt.c}) expect_holds(store, t);
  EXPECT_EQ(store.file_of("c"), ckpt.dir.file("model-00002-of-00002.safetensors"));
  EXPECT_TRUE(store.contains("a"));
  EXPECT_FALSE(store.find("d").has_value());
  EXPECT_THAT(error_of([&] { store.get("d"); }),
              HasSubstr("tensor 'd' not found in checkpoint " + ckpt.dir.path().string()));
}

TEST(TensorStore, LoadsAFileOrAFolderWithModelSafetensors) {
  test::ScratchDir dir;
  Checkpoint data;
  const NamedTensor w = data.make("w", 4);
  write_safetensors(dir.file("model.safetensors"), {w});
  expect_holds(TensorStore(dir.path().string()), w);
  expect_holds(TensorStore(dir.file("model.safetensors")), w);
  std::filesystem::create_directory(dir.file("empty"));
  EXPECT_THAT(error_of([&] { TensorStore store(dir.file("empty")); }),
              HasSubstr("neither model.safetensors nor model.safetensors.index.json"));
}

TEST(TensorStore, DuplicateAcrossShards) {
  ShardedCheckpoint ckpt;
  write_safetensors(ckpt.dir.file("model-00002-of-00002.safetensors"), {ckpt.c, ckpt.a});
  EXPECT_THAT(
      ckpt.load_error(),
      HasSubstr("tensor 'a' is in both " + ckpt.dir.file("model-00001-of-00002.safetensors") +
                " and " + ckpt.dir.file("model-00002-of-00002.safetensors")));
}

TEST(TensorStore, IndexNamesAShardThatLacksTheTensor) {
  ShardedCheckpoint ckpt;
  ckpt.weight_map["d"] = "model-00002-of-00002.safetensors";
  EXPECT_THAT(ckpt.load_error(),
              HasSubstr("weight_map names shard 'model-00002-of-00002.safetensors' for tensor 'd' "
                        "but that shard lacks it"));
}

TEST(TensorStore, ShardHoldsATensorTheIndexDoesNotPlaceThere) {
  ShardedCheckpoint ckpt;
  ckpt.weight_map["b"] = "model-00002-of-00002.safetensors";
  EXPECT_THAT(ckpt.load_error(),
              HasSubstr("tensor 'b' is in shard 'model-00001-of-00002.safetensors' but the "
                        "weight_map names 'model-00002-of-00002.safetensors'"));
  ckpt.weight_map.erase("b");
  EXPECT_THAT(ckpt.load_error(),
              HasSubstr("tensor 'b' is in shard 'model-00001-of-00002.safetensors' but not in "
                        "the weight_map"));
}

TEST(TensorStore, MissingShardFile) {
  ShardedCheckpoint ckpt;
  std::filesystem::remove(ckpt.dir.file("model-00002-of-00002.safetensors"));
  EXPECT_THAT(ckpt.load_error(),
              HasSubstr(ckpt.index() + ": shard 'model-00002-of-00002.safetensors': " +
                        ckpt.dir.file("model-00002-of-00002.safetensors") +
                        ": cannot open: No such file or directory"));
}

TEST(TensorStore, MalformedIndex) {
  ShardedCheckpoint ckpt;
  test::write_bytes(ckpt.index(), R"({"weight_map": {"a": "x", "a": "y"}})");
  EXPECT_THAT(error_of([&] { TensorStore store(ckpt.dir.path().string()); }),
              HasSubstr(ckpt.index() + ": key 'a' appears twice"));
  test::write_bytes(ckpt.index(), R"({"weight_map": {"a": 1}})");
  EXPECT_THAT(error_of([&] { TensorStore store(ckpt.dir.path().string()); }),
              HasSubstr("weight_map: 'a' maps to a non-string 1"));
  test::write_bytes(ckpt.index(), R"({"metadata": {}})");
  EXPECT_THAT(error_of([&] { TensorStore store(ckpt.dir.path().string()); }),
              HasSubstr("no 'weight_map' object"));
}

// The reference fixtures, written by transformers: one file in bf16 and shards in f32.
TEST(TensorStore, LoadsTheReferenceFixtures) {
  const std::string fixtures = DELTATUNE_FIXTURES;
  const TensorStore bf16(fixtures + "/cond_tied_bf16");
  ASSERT_FALSE(bf16.names().empty());
  for (const auto& name : bf16.names()) EXPECT_EQ(bf16.get(name).dtype, DType::BF16) << name;

  const std::string sharded = fixtures + "/cond_v2x_untied_f32_sharded";
  const TensorStore store(sharded);
  const auto index =
      nlohmann::json::parse(test::read_bytes(sharded + "/model.safetensors.index.json"));
  EXPECT_EQ(store.names().size(), index["weight_map"].size());
  for (const auto& [name, shard] : index["weight_map"].items()) {
    EXPECT_EQ(store.file_of(name), sharded + "/" + shard.get<std::string>());
    EXPECT_EQ(store.get(name).dtype, DType::F32) << name;
  }
}

}  // namespace
}  // namespace deltatune
