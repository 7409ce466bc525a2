// The job's data: every dataset of the config read, turned into samples (token ids + labels),
// filtered by length, split into training and validation, and counted.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/sample.h"
#include "train/train_config.h"

namespace deltatune {

class SampleEncoder;  // text formats: tokenizer + chat template (data/encode.h)

struct DataStats {
  int64_t rows = 0;               // rows read
  int64_t bad_rows_skipped = 0;   // malformed rows dropped (skip_bad_rows)
  int64_t too_long_dropped = 0;   // longer than sequence_len, excess_length_strategy: drop
  int64_t too_long_truncated = 0; // longer than sequence_len, excess_length_strategy: truncate
  int64_t without_targets = 0;    // nothing to learn (every label -100): dropped
  int64_t train_samples = 0;
  int64_t validation_samples = 0;
  int64_t train_tokens = 0;
  int64_t train_targets = 0;
};

struct TrainingData {
  std::vector<Sample> train;
  std::vector<Sample> validation;
  DataStats stats;
};

// A pre-tokenized row: `input_ids` and optional `labels` (-100 = not trained), every id inside
// the vocabulary. Throws Error saying what is wrong.
Sample pretokenized_sample(const nlohmann::ordered_json& row, int64_t vocab_size, bool train_on_inputs);

// Reads every dataset. `encoder` turns text rows into samples; it may be null when every dataset
// is pre-tokenized (rows with input_ids and optional labels). Throws when nothing is left.
TrainingData load_training_data(const TrainConfig& config, const SampleEncoder* encoder, int64_t vocab_size);

}  // namespace deltatune
