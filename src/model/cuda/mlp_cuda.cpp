#include "model/cuda/mlp_cuda.h"

#include "ops/activation_cuda.h"

namespace deltatune {

using bf16 = __nv_bfloat16;

void mlp_cuda_forward(const DeviceLayerContext& ctx, const DeviceMlp& w, const bf16* x, bf16* out,
                      DeviceMlpActivations& act) {
  const int64_t tokens = ctx.tokens(), n = tokens * ctx.config.intermediate_size;
  act.gate = ctx.alloc<bf16>(n);
  act.up = ctx.alloc<bf16>(n);
  lora_linear_cuda_forward(ctx.blas, ctx.arena, x, tokens, w.gate_proj, ctx.lora, ctx.layer,
                           LinearKind::GateProj, act.gate, -1, act.lora.keep(LinearKind::GateProj));
  lora_linear_cuda_forward(ctx.blas, ctx.arena, x, tokens, w.up_proj, ctx.lora, ctx.layer,
                           LinearKind::UpProj, act.up, -1, act.lora.keep(LinearKind::UpProj));
  if (out == nullptr) return;  // activations only
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  bf16* h = ctx.alloc<bf16>(n);
  swiglu_cuda_forward(act.gate, act.up, n, h, ctx.target());
  lora_linear_cuda_forward(ctx.blas, ctx.arena, h, tokens, w.down_proj, ctx.lora, ctx.layer,
                           LinearKind::DownProj, out, -1);
  ctx.arena.reset(mark);
}

void mlp_cuda_backward(const DeviceLayerContext& ctx, const DeviceMlp& w, const bf16* x,
                       const DeviceMlpActivations& act, const bf16* d_out, bf16* dx) {
  const int64_t tokens = ctx.tokens(), n = tokens * ctx.config.intermediate_size;
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  // d_gate takes d_h's place (the SwiGLU backward reads dh before writing dgate); h, remade
  // here, gives its place to d_up after down_proj's backward.
  bf16* h = ctx.alloc<bf16>(n);
  swiglu_cuda_forward(act.gate, act.up, n, h, ctx.target());
  bf16* d_h = ctx.alloc<bf16>(n);
  lora_linear_cuda_backward(ctx.blas, ctx.arena, h, tokens, w.down_proj, ctx.lora, ctx.layer,
                            LinearKind::DownProj, d_out, d_h, false, -1);
  bf16* d_up = h;
  bf16* d_gate = d_h;
  swiglu_cuda_backward(act.gate, act.up, d_h, n, d_gate, d_up, ctx.target());
  lora_linear_cuda_backward(ctx.blas, ctx.arena, x, tokens, w.gate_proj, ctx.lora, ctx.layer,
                            LinearKind::GateProj, d_gate, dx, false, -1,
                            act.lora.kept(LinearKind::GateProj));
  lora_linear_cuda_backward(ctx.blas, ctx.arena, x, tokens, w.up_proj, ctx.lora, ctx.layer,
                            LinearKind::UpProj, d_up, dx, true, -1, act.lora.kept(LinearKind::UpProj));
  ctx.arena.reset(mark);
}

}  // namespace deltatune
