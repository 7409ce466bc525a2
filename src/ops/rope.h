// Rotary position embedding on the first `rotary_dim` dims of each head, rotate-half form
// (spec/qwen35.md): pairs (i, i + rotary_dim/2) turn by angle pos * theta^(-2i/rotary_dim).
// For text, mRoPE gives every axis the same position, so it is this plain RoPE.
#pragma once

#include <cstdint>
#include <vector>

namespace deltatune {

// cos/sin of every (position, frequency) pair, computed in double.
template <class T>
struct RopeTable {
  int rotary_dim = 0;
  std::vector<T> cos;  // [tokens, rotary_dim / 2]
  std::vector<T> sin;
};

template <class T>
RopeTable<T> make_rope_table(const int64_t* positions, int64_t tokens, int rotary_dim, double theta);

// In place on x: `heads` heads of each token, head h of token t at x + t * ld_token + h * ld_head.
template <class T>
void rope_forward(T* x, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                  const RopeTable<T>& table);
// The transpose rotation, in place on the gradient.
template <class T>
void rope_backward(T* dx, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                   const RopeTable<T>& table);

}  // namespace deltatune
