// The Qwen3.5 text model on one NVIDIA GPU (model/qwen35.h's layer loop, bf16 activations, float
// accumulation, float LoRA factors): embedding; per layer x += mixer(norm1(x)); x += mlp(norm2(x));
// final norm; the chunked cross-entropy (ops/loss_cuda.h: never the full logits). The backward
// walks the layers in reverse; with checkpointing each layer is recomputed from its saved input
// just before its backward, as on the CPU. Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include "core/cuda/device_arena.h"
#include "lora/cuda/lora_linear_cuda.h"
#include "model/batch.h"
#include "model/cuda/device_model.h"
#include "model/qwen35.h"
#include "ops/matmul_cuda.h"

namespace deltatune {

// The loss of a labelled batch, no gradients.
LossSum model_loss_cuda(const DeviceModel& model, const DeviceLoraRun& lora, const Batch& batch,
                        cuda::DeviceArena& arena, const cuda::Blas& blas);

// The loss and the gradient of grad_scale * loss_sum with respect to every LoRA factor, added
// into the device adapter's gradients. Pass grad_scale = 1 / (targets of the whole step).
// kept_layers: as model_loss_backward's (model/qwen35.h).
LossSum model_loss_backward_cuda(const DeviceModel& model, const DeviceLoraRun& lora,
                                 const Batch& batch, double grad_scale, bool checkpointing,
                                 cuda::DeviceArena& arena, const cuda::Blas& blas,
                                 int kept_layers = 0);

}  // namespace deltatune
