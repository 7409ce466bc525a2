// Turning a text row (chat, alpaca, completion) into a sample with labels. Implemented once the
// tokenizer and chat templates exist; the interface lets the dataset reader stay format-blind.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "data/sample.h"
#include "train/train_config.h"

namespace deltatune {

class SampleEncoder {
 public:
  virtual ~SampleEncoder() = default;
  // Throws Error describing what is wrong with the row (the caller adds file:line).
  virtual Sample encode_row(const nlohmann::ordered_json& row, const DatasetConfig& dataset) const = 0;
};

}  // namespace deltatune

namespace deltatune {
struct TrainConfig;
// The encoder for the config's text datasets (tokenizer from tokenizer_config, chat template).
std::unique_ptr<SampleEncoder> make_sample_encoder(const TrainConfig& config);
}  // namespace deltatune
