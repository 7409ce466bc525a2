#include "model/mlp.h"

#include "ops/activation.h"

namespace deltatune {

template <class T>
void mlp_forward(const LayerContext& ctx, const MlpWeights& w, const T* x, T* out, MlpActivations<T>& act) {
  const int64_t n = ctx.tokens * ctx.config.intermediate_size;
  act.gate = ctx.alloc<T>(n);
  act.up = ctx.alloc<T>(n);
  act.h = ctx.alloc<T>(n);
  lora_linear_forward(x, ctx.tokens, w.gate_proj, ctx.lora, ctx.layer, LinearKind::GateProj, act.gate, ctx.arena);
  lora_linear_forward(x, ctx.tokens, w.up_proj, ctx.lora, ctx.layer, LinearKind::UpProj, act.up, ctx.arena);
  swiglu_forward(act.gate, act.up, n, act.h);
  lora_linear_forward(act.h, ctx.tokens, w.down_proj, ctx.lora, ctx.layer, LinearKind::DownProj, out, ctx.arena);
}

template <class T>
void mlp_backward(const LayerContext& ctx, const MlpWeights& w, const T* x, const MlpActivations<T>& act,
                  const T* d_out, T* dx) {
  const int64_t n = ctx.tokens * ctx.config.intermediate_size;
  const Arena::Mark mark = ctx.arena.mark();
  T* d_h = ctx.alloc<T>(n);
  T* d_gate = ctx.alloc<T>(n);
  T* d_up = ctx.alloc<T>(n);
  lora_linear_backward(act.h, ctx.tokens, w.down_proj, ctx.lora, ctx.layer, LinearKind::DownProj, d_out, d_h,
                       false, ctx.arena);
  swiglu_backward(act.gate, act.up, d_h, n, d_gate, d_up);
  lora_linear_backward(x, ctx.tokens, w.gate_proj, ctx.lora, ctx.layer, LinearKind::GateProj, d_gate, dx, false,
                       ctx.arena);
  lora_linear_backward(x, ctx.tokens, w.up_proj, ctx.lora, ctx.layer, LinearKind::UpProj, d_up, dx, true,
                       ctx.arena);
  ctx.arena.reset(mark);
}

#define INSTANTIATE(T)                                                                                \
  template void mlp_forward<T>(const LayerContext&, const MlpWeights&, const T*, T*, MlpActivations<T>&); \
  template void mlp_backward<T>(const LayerContext&, const MlpWeights&, const T*, const MlpActivations<T>&, \
                                const T*, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
