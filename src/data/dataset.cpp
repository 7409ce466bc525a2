#include "data/dataset.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "data/encode.h"
#include "data/jsonl.h"

namespace deltatune {

namespace {

std::vector<int32_t> int_array(const nlohmann::ordered_json& row, const char* key, int64_t vocab_size, bool labels) {
  DT_CHECK(row.contains(key) && row.at(key).is_array(), "'", key, "' must be a list of integers");
  std::vector<int32_t> out;
  for (const auto& v : row.at(key)) {
    DT_CHECK(v.is_number_integer(), "'", key, "' must hold integers, found ", v.dump());
    const int64_t x = v.get<int64_t>();
    const bool ok = (x >= 0 && x < vocab_size) || (labels && x == kIgnoreLabel);
    DT_CHECK(ok, "'", key, "' holds ", x, ", outside the vocabulary [0, ", vocab_size, ")",
             labels ? " (and not -100)" : "");
    out.push_back(int32_t(x));
  }
  return out;
}

}  // namespace

Sample pretokenized_sample(const nlohmann::ordered_json& row, int64_t vocab_size, bool train_on_inputs) {
  Sample s;
  s.input_ids = int_array(row, "input_ids", vocab_size, false);
  DT_CHECK(!s.input_ids.empty(), "'input_ids' is empty");
  if (row.contains("labels") && !train_on_inputs) {
    s.labels = int_array(row, "labels", vocab_size, true);
    DT_CHECK(s.labels.size() == s.input_ids.size(), "'labels' has ", s.labels.size(), " entries for ",
             s.input_ids.size(), " input_ids");
  } else {
    s.labels = s.input_ids;
  }
  return s;
}

TrainingData load_training_data(const TrainConfig& config, const SampleEncoder* encoder, int64_t vocab_size) {
  TrainingData data;
  std::vector<Sample> all;
  for (const DatasetConfig& d : config.datasets) {
    DT_CHECK(!d.type.empty() || vocab_size > 0, "internal: vocabulary size unknown");
    DT_CHECK(d.type.empty() || encoder, d.path, ": dataset type '", d.type, "' needs a tokenizer");
    data.stats.bad_rows_skipped += read_json_rows(d.path, d.split, config.skip_bad_rows,
                                                  [&](const nlohmann::ordered_json& row, const RowSource&) {
      ++data.stats.rows;
      all.push_back(d.type.empty() ? pretokenized_sample(row, vocab_size, config.train_on_inputs)
                                   : encoder->encode_row(row, d));
    });
  }
  // Length policy, then samples with nothing to learn.
  std::vector<Sample> kept;
  for (Sample& s : all) {
    if (s.length() > config.sequence_len) {
      if (config.excess_length_strategy == "drop") {
        ++data.stats.too_long_dropped;
        continue;
      }
      s.input_ids.resize(size_t(config.sequence_len));
      s.labels.resize(size_t(config.sequence_len));
      ++data.stats.too_long_truncated;
    }
    if (s.trained_targets() == 0) {
      ++data.stats.without_targets;
      continue;
    }
    kept.push_back(std::move(s));
  }
  DT_CHECK(!kept.empty(), config.source, ": no training samples left: ", data.stats.rows, " rows read, ",
           data.stats.bad_rows_skipped, " malformed, ", data.stats.too_long_dropped, " longer than sequence_len ",
           config.sequence_len, ", ", data.stats.without_targets, " with nothing to train");
  // Validation split: a seeded shuffle, then the first val_set_size (a fraction or a count).
  int64_t n_val = 0;
  if (config.val_set_size > 0) {
    n_val = config.val_set_size < 1 ? int64_t(std::ceil(config.val_set_size * double(kept.size())))
                                    : int64_t(config.val_set_size);
    DT_CHECK(n_val < int64_t(kept.size()), config.source, ": val_set_size ", config.val_set_size, " leaves no ",
             "training samples out of ", kept.size());
    Rng rng(config.seed ^ 0x5eed5eedull);
    for (size_t i = kept.size(); i > 1; --i) std::swap(kept[i - 1], kept[size_t(rng.next_u64() % i)]);
  }
  data.validation.assign(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.begin() + n_val));
  data.train.assign(std::make_move_iterator(kept.begin() + n_val), std::make_move_iterator(kept.end()));
  data.stats.train_samples = int64_t(data.train.size());
  data.stats.validation_samples = int64_t(data.validation.size());
  for (const Sample& s : data.train) {
    data.stats.train_tokens += s.length();
    data.stats.train_targets += s.trained_targets();
  }
  return data;
}

}  // namespace deltatune
