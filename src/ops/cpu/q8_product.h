// The int8 product with q8_0 weights, for inference only (see Int8ActivationScope in ops/matmul.h):
// the activations are quantized like ggml's q8_0 — per block of 32 values, scale d = max|x| / 127,
// q = round-to-nearest(x / d) in [-127, 127] — but the scale is kept as a float (ggml rounds it to
// f16); each block's dot with a weight block is an exact int32 sum, scaled by d_x · d_w and summed
// in float32. Kernels: AVX-512 VNNI (vpdpbusd on 256-bit vectors: one q8_0 block per vector, the
// activations offset to unsigned by +128 and the offset taken back through the weight block's sum),
// AVX2 (vpmaddubsw with the sign trick: |w| unsigned times x carrying w's sign), and a scalar
// reference; each tiles 4 tokens × 4 (AVX2: 2) weight rows so every load is reused, threaded over
// blocks of tokens × weight rows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace deltatune {

enum class Q8Isa { Vnni, Avx2, Scalar };

// Whether this CPU runs `isa`; the variant picked at run time (the first available of the three).
bool q8_isa_available(Q8Isa isa);
Q8Isa q8_default_isa();
const char* q8_isa_name(Q8Isa isa);

// q[r·in + i], d[r·(in/32) + b]: rows × in floats at x (row stride ldx) quantized per block of 32
// (in a multiple of 32). x · d = q·d up to half a step, |q| ≤ 127.
void quantize_activations_q8(const float* x, int64_t rows, int64_t in, int64_t ldx, int8_t* q, float* d);

// y[t·ldy + o] (= or += when accumulate) Σ_b d[t,b] · d_w[o,b] · Σ_j q[t, 32b+j] · w_q[o, 32b+j],
// for t < rows, o < out; w is `out` rows of in/32 q8_0 blocks (f16 scale, 32 int8).
void q8_product(const int8_t* q, const float* d, int64_t rows, const std::byte* w, int64_t out, int64_t in,
                float* y, int64_t ldy, bool accumulate, Q8Isa isa);

}  // namespace deltatune
