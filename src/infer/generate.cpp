#include "infer/generate.h"

#include <algorithm>

#include "infer/session.h"

namespace deltatune {

std::vector<int64_t> generate(const Model& model, const LoraRun& lora, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const std::function<void(int64_t)>& on_token) {
  DT_CHECK(!prompt.empty(), "generate: the prompt is empty");
  Sampler sampler(options.sampling);
  InferenceSession<float> session(model);
  std::vector<float> logits = session.feed(prompt, lora);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int64_t next = sampler.next(logits);
    out.push_back(next);
    if (on_token) on_token(next);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end()) break;
    if (i + 1 < options.max_new_tokens) logits = session.feed(std::span<const int64_t>(&next, 1), lora);
  }
  return out;
}

}  // namespace deltatune
