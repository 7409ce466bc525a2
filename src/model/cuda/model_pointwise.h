// The GPU model path's elementwise steps that are no op family of their own: the embedding
// lookup, residual adds, the Gated DeltaNet's β and decay, and full attention's output gate, each
// with its backward (the CPU forms are inline in model/qwen35.cpp, model/gated_deltanet.cpp and
// model/attention.cpp). bf16 values, float arithmetic; device pointers, or host pointers under
// cuda::Target::host_emulation().
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

// x[t, :] = table[ids[t], :] (ids in the target's memory, each in [0, vocab)).
void embedding_cuda_forward(const int64_t* ids, int64_t tokens, const __nv_bfloat16* table,
                            int64_t dim, __nv_bfloat16* x, cuda::Target target);

// y += x over n values.
void add_cuda(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cuda::Target target);
// x *= s over n values.
void scale_cuda(__nv_bfloat16* x, int64_t n, float s, cuda::Target target);

// The Gated DeltaNet's per value head gates (its q, k, v come straight out of the conv: ConvColumns
// in ops/conv1d_cuda.h):
//   beta = sigmoid(b),  g = −exp(A_log) · softplus(a + dt_bias)     (float; b, a [T, Hv])
void gated_deltanet_gates_cuda(const __nv_bfloat16* b, const __nv_bfloat16* a, const float* A_log,
                               const float* dt_bias, int64_t tokens, int heads_v, float* beta,
                               float* g, cuda::Target target);
// Its backward:
//   d_b = d_beta · beta (1 − beta),  d_a = d_g · (−exp(A_log)) · softplus'(a + dt_bias).
void gated_deltanet_gates_backward_cuda(const float* d_beta, const float* d_g, const float* beta,
                                        const __nv_bfloat16* a, const float* A_log,
                                        const float* dt_bias, int64_t tokens, int heads_v,
                                        __nv_bfloat16* d_b, __nv_bfloat16* d_a,
                                        cuda::Target target);

// Full attention's output gate: gated[t, h, i] = o[t, h, i] · sigmoid(qg[t, h, hd + i]), where
// qg [T, H, 2·hd] holds per head the query, then the gate.
void attention_gate_cuda_forward(const __nv_bfloat16* o, const __nv_bfloat16* qg, int64_t tokens,
                                 int heads, int head_dim, __nv_bfloat16* gated,
                                 cuda::Target target);
// d_o = d_gated · s and the gate half of d_qg = d_gated · o · s (1 − s), s = sigmoid(gate); the
// query half of d_qg is left alone.
void attention_gate_cuda_backward(const __nv_bfloat16* o, const __nv_bfloat16* qg,
                                  const __nv_bfloat16* d_gated, int64_t tokens, int heads,
                                  int head_dim, __nv_bfloat16* d_o, __nv_bfloat16* d_qg,
                                  cuda::Target target);

}  // namespace deltatune
