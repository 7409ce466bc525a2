#include "ops/embedding.h"

namespace deltatune {

template <class T>
void embedding_forward(const Tensor& table, const int64_t* ids, int64_t tokens, T* out) {
  const int64_t vocab = table.shape[0], dim = table.shape[1];
  const size_t row_bytes = dtype_bytes(table.dtype, dim);
  for (int64_t t = 0; t < tokens; ++t)
    DT_CHECK(ids[t] >= 0 && ids[t] < vocab, "token id ", ids[t], " at position ", t,
             " is outside the vocabulary [0, ", vocab, ")");
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t)
    convert_to<T>(static_cast<const std::byte*>(table.data) + size_t(ids[t]) * row_bytes,
                  table.dtype, out + t * dim, size_t(dim));
}

template void embedding_forward<float>(const Tensor&, const int64_t*, int64_t, float*);
template void embedding_forward<double>(const Tensor&, const int64_t*, int64_t, double*);

}  // namespace deltatune
