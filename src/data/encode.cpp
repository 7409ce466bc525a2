#include "data/encode.h"

#include "core/error.h"

namespace deltatune {

std::unique_ptr<SampleEncoder> make_sample_encoder(const TrainConfig& config) {
  fail(config.source, ": text datasets (chat_template, alpaca, completion) need the tokenizer, which is not ",
       "built yet; use pre-tokenized rows (input_ids, optional labels) for now");
}

}  // namespace deltatune
