#include "infer/session.h"

#include "ops/matmul.h"

namespace deltatune {

template <class T>
InferenceSession<T>::InferenceSession(const Model& model)
    : model_(model), state_(initial_model_state<T>(model.config())), arena_(size_t(16) << 20) {}

template <class T>
void InferenceSession<T>::reset() {
  state_ = initial_model_state<T>(model_.config());
}

template <class T>
std::vector<T> InferenceSession<T>::feed(std::span<const int64_t> tokens, const LoraRun& lora) {
  DT_CHECK(!tokens.empty(), "feed: no tokens");
  const ModelConfig& c = model_.config();
  const Int8ActivationScope int8(int8_mode_);
  const Batch batch = make_batch(std::vector<int64_t>(tokens.begin(), tokens.end()));
  std::vector<T> hidden(static_cast<size_t>(batch.tokens() * c.hidden_size));
  model_forward_hidden(model_, lora, batch, hidden.data(), arena_, &state_);
  std::vector<T> logits(static_cast<size_t>(c.vocab_size));
  linear_forward(hidden.data() + (batch.tokens() - 1) * c.hidden_size, 1, model_.weights().lm_head, logits.data());
  return logits;
}

template class InferenceSession<float>;
template class InferenceSession<double>;

}  // namespace deltatune
