#include "data/cache.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "data/encode.h"
#include "export/gguf_tokenizer.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace deltatune {

namespace fs = std::filesystem;

namespace {

// FNV-1a, 64 bits: fast, and plenty to tell one data set-up from another.
struct Hash {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  }
  void text(const std::string& s) {
    const uint64_t n = s.size();
    bytes(&n, sizeof n);
    bytes(s.data(), s.size());
  }
  void file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      text("(missing) " + path);
      return;
    }
    std::vector<char> buf(1 << 20);
    uint64_t total = 0;
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      const size_t n = size_t(in.gcount());
      bytes(buf.data(), n);
      total += n;
    }
    bytes(&total, sizeof total);
  }
};

std::string prepared_dir(const TrainConfig& c) {
  return c.dataset_prepared_path.empty() ? (fs::path(c.output_dir) / "prepared").string() : c.dataset_prepared_path;
}

// Settings that change the samples; anything else (learning rate, steps) does not.
nlohmann::json data_settings(const TrainConfig& c) {
  nlohmann::json datasets = nlohmann::json::array();
  for (const DatasetConfig& d : c.datasets) {
    nlohmann::json roles = nlohmann::json::array();
    for (const auto& [ours, names] : d.roles) roles.push_back({ours, names});
    datasets.push_back({{"path", d.path}, {"type", d.type}, {"split", d.split}, {"field_messages", d.field_messages},
                        {"role", d.message_property_role}, {"content", d.message_property_content}, {"roles", roles},
                        {"roles_to_train", d.roles_to_train}, {"train_on_eos", d.train_on_eos}, {"field", d.field},
                        {"chat_template", d.chat_template}});
  }
  return {{"format", 1},
          {"datasets", datasets},
          {"chat_template", c.chat_template},
          {"sequence_len", c.sequence_len},
          {"excess_length_strategy", c.excess_length_strategy},
          {"train_on_inputs", c.train_on_inputs},
          {"skip_bad_rows", c.skip_bad_rows},
          {"val_set_size", c.val_set_size},
          {"seed", c.seed}};
}

void put_samples(const std::vector<Sample>& samples, const std::string& prefix, std::vector<HostTensor>& keep,
                 std::vector<NamedTensor>& out) {
  int64_t total = 0;
  for (const Sample& s : samples) total += s.length();
  HostTensor ids(DType::I32, {total}), labels(DType::I32, {total}), offsets(DType::I64, {int64_t(samples.size()) + 1});
  int64_t at = 0;
  offsets.ptr<int64_t>()[0] = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    std::copy(samples[i].input_ids.begin(), samples[i].input_ids.end(), ids.ptr<int32_t>() + at);
    std::copy(samples[i].labels.begin(), samples[i].labels.end(), labels.ptr<int32_t>() + at);
    at += samples[i].length();
    offsets.ptr<int64_t>()[i + 1] = at;
  }
  for (auto& [name, t] : {std::pair{".input_ids", &ids}, std::pair{".labels", &labels}, std::pair{".offsets", &offsets}}) {
    out.push_back({prefix + name, t->view()});
    keep.push_back(*t);
  }
}

std::vector<Sample> get_samples(const SafetensorsFile& f, const std::string& prefix) {
  const Tensor ids = f.tensor(prefix + ".input_ids"), labels = f.tensor(prefix + ".labels"),
               offsets = f.tensor(prefix + ".offsets");
  DT_CHECK(ids.dtype == DType::I32 && labels.dtype == DType::I32 && offsets.dtype == DType::I64 &&
               ids.numel() == labels.numel() && offsets.numel() >= 1,
           f.path(), ": not a deltatune data cache");
  const auto* o = static_cast<const int64_t*>(offsets.data);
  const auto* id = static_cast<const int32_t*>(ids.data);
  const auto* lb = static_cast<const int32_t*>(labels.data);
  std::vector<Sample> out(static_cast<size_t>(offsets.numel() - 1));
  for (size_t i = 0; i < out.size(); ++i) {
    DT_CHECK(o[i] <= o[i + 1] && o[i + 1] <= ids.numel(), f.path(), ": corrupt sample offsets");
    out[i].input_ids.assign(id + o[i], id + o[i + 1]);
    out[i].labels.assign(lb + o[i], lb + o[i + 1]);
  }
  return out;
}

}  // namespace

TrainingData prepare_training_data(const TrainConfig& config, int64_t vocab_size) {
  if (std::optional<TrainingData> cached = load_data_cache(config)) {
    std::fprintf(stderr, "data: using the prepared cache %s\n", data_cache_path(config).c_str());
    return std::move(*cached);
  }
  std::unique_ptr<SampleEncoder> encoder;
  for (const DatasetConfig& d : config.datasets)
    if (!d.type.empty() && !encoder) encoder = make_sample_encoder(config);
  TrainingData data = load_training_data(config, encoder.get(), vocab_size);
  std::fprintf(stderr, "data: prepared and cached in %s\n", save_data_cache(config, data).c_str());
  return data;
}

std::string data_cache_key(const TrainConfig& c) {
  Hash h;
  h.text(data_settings(c).dump());
  for (const DatasetConfig& d : c.datasets) h.file(d.path);
  if (fs::is_regular_file(c.tokenizer_config) && is_gguf_file(c.tokenizer_config)) {
    // A GGUF base's embedded tokenizer: its keys, not the (large) file.
    const GgufFile gguf(c.tokenizer_config);
    h.text(tokenizer_json_from_gguf(gguf));
    h.text(tokenizer_config_from_gguf(gguf).dump());
  } else {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"})
      h.file((fs::path(c.tokenizer_config) / f).string());
  }
  if (fs::is_regular_file(c.chat_template)) h.file(c.chat_template);
  for (const DatasetConfig& d : c.datasets)
    if (fs::is_regular_file(d.chat_template)) h.file(d.chat_template);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h.h);
  return hex;
}

std::string data_cache_path(const TrainConfig& c) {
  return (fs::path(prepared_dir(c)) / (data_cache_key(c) + ".safetensors")).string();
}

std::string save_data_cache(const TrainConfig& c, const TrainingData& data) {
  const std::string path = data_cache_path(c);
  fs::create_directories(fs::path(path).parent_path());
  std::vector<HostTensor> keep;
  std::vector<NamedTensor> tensors;
  put_samples(data.train, "train", keep, tensors);
  put_samples(data.validation, "validation", keep, tensors);
  const DataStats& s = data.stats;
  const nlohmann::json stats = {{"rows", s.rows}, {"bad_rows_skipped", s.bad_rows_skipped},
                                {"too_long_dropped", s.too_long_dropped}, {"too_long_truncated", s.too_long_truncated},
                                {"without_targets", s.without_targets}};
  write_safetensors(path, tensors, {{"deltatune_data_cache", "1"}, {"settings", data_settings(c).dump()},
                                    {"stats", stats.dump()}});
  return path;
}

std::optional<TrainingData> load_data_cache(const TrainConfig& c) {
  const std::string path = data_cache_path(c);
  if (!fs::exists(path)) return std::nullopt;
  try {
    const SafetensorsFile f(path);
    TrainingData data;
    data.train = get_samples(f, "train");
    data.validation = get_samples(f, "validation");
    const auto stats = nlohmann::json::parse(f.metadata().at("stats"));
    data.stats.rows = stats.at("rows");
    data.stats.bad_rows_skipped = stats.at("bad_rows_skipped");
    data.stats.too_long_dropped = stats.at("too_long_dropped");
    data.stats.too_long_truncated = stats.at("too_long_truncated");
    data.stats.without_targets = stats.at("without_targets");
    data.stats.train_samples = int64_t(data.train.size());
    data.stats.validation_samples = int64_t(data.validation.size());
    for (const Sample& smp : data.train) {
      data.stats.train_tokens += smp.length();
      data.stats.train_targets += smp.trained_targets();
    }
    return data;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: ignoring the data cache %s (%s); preparing the data again\n", path.c_str(), e.what());
    return std::nullopt;
  }
}

}  // namespace deltatune
