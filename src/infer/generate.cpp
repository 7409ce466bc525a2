#include "infer/generate.h"

#include <algorithm>

#include "core/arena.h"
#include "model/qwen35.h"
#include "ops/matmul.h"

namespace deltatune {

std::vector<int64_t> generate(const Model& model, const LoraRun& lora, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const std::function<void(int64_t)>& on_token) {
  DT_CHECK(!prompt.empty(), "generate: the prompt is empty");
  const ModelConfig& c = model.config();
  Sampler sampler(options.sampling);
  std::vector<int64_t> ids = prompt, out;
  Arena arena;
  std::vector<float> hidden, logits(static_cast<size_t>(c.vocab_size));
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const Batch batch = make_batch(ids);
    hidden.resize(static_cast<size_t>(batch.tokens() * c.hidden_size));
    model_forward_hidden(model, lora, batch, hidden.data(), arena);
    // Only the last position's logits are needed.
    linear_forward(hidden.data() + (batch.tokens() - 1) * c.hidden_size, 1, model.weights().lm_head, logits.data());
    const int64_t next = sampler.next(logits);
    out.push_back(next);
    ids.push_back(next);
    if (on_token) on_token(next);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end()) break;
  }
  return out;
}

}  // namespace deltatune
