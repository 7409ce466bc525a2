// Decoding stored weight rows, and dot products of one stored weight row (F32, F16, BF16 or Q8_0) with a few float rows of
// activations, decoding the weight on the fly: the product of generation (one token at a time),
// bound by reading the weights once. Compiled for AVX-512, AVX2 and the portable baseline, picked
// by the CPU at run time, so a portable build still reads bf16 and q8_0 rows at memory speed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace deltatune {

// out[r] = Σ_i x[r·ldx + i] · w[i] for r < rows; `w` points at a row of `in` elements of `dtype`
// (whole blocks for Q8_0).
void weight_row_dots(const std::byte* w, DType dtype, int64_t in, const float* x, int64_t ldx, int64_t rows,
                     float* out);

// The n elements at `w` (F32, F16, BF16, Q8_0: whole blocks; other float types too) as floats:
// the same values as convert_to<float>, vectorized like the dots.
void decode_weight_row(const std::byte* w, DType dtype, int64_t n, float* out);

// "avx512", "avx2" or "baseline": the variant weight_row_dots runs (for benchmark logs).
const char* weight_row_dots_isa();

}  // namespace deltatune
