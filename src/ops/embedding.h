// Token embedding lookup: out[t, :] = table[ids[t], :], the table in any float dtype.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace deltatune {

template <class T>
void embedding_forward(const Tensor& table, const int64_t* ids, int64_t tokens, T* out);

}  // namespace deltatune
