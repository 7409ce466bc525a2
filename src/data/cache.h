// The tokenized cache: what load_training_data produces (training and validation samples, the
// counts), stored as one safetensors file under dataset_prepared_path and memory-mapped back.
// Its name is a hash of everything that decides its content — the data files' bytes, the
// tokenizer files, the chat template, and the data settings — so a change to any of them misses
// the cache instead of reusing stale tokens.
#pragma once

#include <optional>
#include <string>

#include "data/dataset.h"
#include "train/train_config.h"

namespace deltatune {

// The cache key of a config: hex of a 64-bit hash over the inputs named above.
std::string data_cache_key(const TrainConfig& config);
std::string data_cache_path(const TrainConfig& config);  // <prepared path>/<key>.safetensors

// The job's data: from the cache when it holds this config's key (saying so), else read, tokenized
// and cached (saying where).
TrainingData prepare_training_data(const TrainConfig& config, int64_t vocab_size);

// Writes atomically; returns the path.
std::string save_data_cache(const TrainConfig& config, const TrainingData& data);
// The cached data when a file for this config's key exists and reads back whole.
std::optional<TrainingData> load_data_cache(const TrainConfig& config);

}  // namespace deltatune
