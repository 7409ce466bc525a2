// The gated delta rule (spec/gated_delta_rule.md), forward and backward, on packed sequences.
//
// Layout (row-major, T = all tokens of the pack):
//   q, k  [T, Hk, dk]   already L2-normalised; q already scaled by dk^-1/2
//   v     [T, Hv, dv]
//   g     [T, Hv]       log decay (<= 0): the state is multiplied by exp(g_t) at step t
//   beta  [T, Hv]
//   out   [T, Hv, dv]
//   state [nseq, Hv, dk, dv]  (initial / final, optional: nullptr = zero / not wanted)
// Value head h reads key head h / (Hv / Hk) (transformers' repeat_interleave).
// cu_seqlens [nseq + 1]: sequence s is tokens cu_seqlens[s] .. cu_seqlens[s+1]-1; the state starts
// from initial_state (or zero) at every sequence start.
//
// Two forms of the same function: the recurrent reference (one token at a time) and the chunked
// algorithm (WY/UT transform over chunks of `chunk` tokens, chunks never straddling a sequence).
#pragma once

#include <cstdint>
#include <span>

namespace deltatune {

struct DeltaRuleShape {
  int64_t tokens;
  int num_k_heads;
  int num_v_heads;
  int k_dim;
  int v_dim;
};

constexpr int kDeltaRuleChunk = 64;

// Throws when the shape or cu_seqlens cannot describe a valid call (shared by every form).
void check_delta_rule_arguments(const DeltaRuleShape& shape, std::span<const int64_t> cu_seqlens);

template <class T>
void gated_delta_rule_recurrent_forward(const DeltaRuleShape& shape,
                                        std::span<const int64_t> cu_seqlens, const T* q,
                                        const T* k, const T* v, const T* g, const T* beta,
                                        const T* initial_state, T* out, T* final_state);

template <class T>
void gated_delta_rule_chunked_forward(const DeltaRuleShape& shape,
                                      std::span<const int64_t> cu_seqlens, const T* q, const T* k,
                                      const T* v, const T* g, const T* beta,
                                      const T* initial_state, T* out, T* final_state,
                                      int chunk = kDeltaRuleChunk);

// Backward: given d_out (and d_final_state, nullable = zero), writes dq, dk [T, Hk, dk] (summed
// over the value heads that share a key head), dv [T, Hv, dv], dg, dbeta [T, Hv], and
// d_initial_state (nullable = not wanted). Outputs are overwritten, not accumulated.
template <class T>
void gated_delta_rule_recurrent_backward(const DeltaRuleShape& shape,
                                         std::span<const int64_t> cu_seqlens, const T* q,
                                         const T* k, const T* v, const T* g, const T* beta,
                                         const T* initial_state, const T* d_out,
                                         const T* d_final_state, T* dq, T* dk, T* dv, T* dg,
                                         T* dbeta, T* d_initial_state);

template <class T>
void gated_delta_rule_chunked_backward(const DeltaRuleShape& shape,
                                       std::span<const int64_t> cu_seqlens, const T* q, const T* k,
                                       const T* v, const T* g, const T* beta,
                                       const T* initial_state, const T* d_out,
                                       const T* d_final_state, T* dq, T* dk, T* dv, T* dg,
                                       T* dbeta, T* d_initial_state, int chunk = kDeltaRuleChunk);

}  // namespace deltatune
