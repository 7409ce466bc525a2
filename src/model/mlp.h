// The SwiGLU MLP, forward and backward: out = down(silu(gate(x)) * up(x)).
#pragma once

#include "model/layer_context.h"
#include "model/weights.h"

namespace deltatune {

template <class T>
struct MlpActivations {
  T* gate;  // [T, I]
  T* up;    // [T, I]
  T* h;     // [T, I] silu(gate) * up, the down_proj input
};

template <class T>
void mlp_forward(const LayerContext& ctx, const MlpWeights& w, const T* x, T* out, MlpActivations<T>& act);

template <class T>
void mlp_backward(const LayerContext& ctx, const MlpWeights& w, const T* x, const MlpActivations<T>& act,
                  const T* d_out, T* dx);

}  // namespace deltatune
