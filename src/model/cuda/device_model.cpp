#include "model/cuda/device_model.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "core/dtype.h"
#include "model/cuda/model_pointwise.h"

namespace deltatune {

namespace {

using bf16 = __nv_bfloat16;

// Elements converted per upload: 4 MiB of float on the host at a time, whatever the tensor size.
constexpr int64_t kPanelElements = int64_t(1) << 20;

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Copies tensor t (contiguous, any float dtype) into target memory as bf16 or float.
void upload_as(const Tensor& t, void* dst, bool as_float, const cuda::Target& target) {
  DT_CHECK(t.is_contiguous() && t.device == Device::CPU, "DeviceModel: expected a contiguous host tensor");
  const int64_t n = t.numel();
  const size_t in_size = dtype_size(t.dtype), out_size = as_float ? 4 : 2;
  if ((t.dtype == DType::BF16 && !as_float) || (t.dtype == DType::F32 && as_float)) {
    cuda::copy_to_target(dst, t.data, size_t(n) * in_size, target);
    return;
  }
  std::vector<float> panel(size_t(std::min(n, kPanelElements)));
  std::vector<uint16_t> panel16(as_float ? 0 : panel.size());
  for (int64_t i0 = 0; i0 < n; i0 += kPanelElements) {
    const int64_t count = std::min(kPanelElements, n - i0);
    convert_to<float>(static_cast<const char*>(t.data) + size_t(i0) * in_size, t.dtype, panel.data(),
                      size_t(count));
    void* out = static_cast<char*>(dst) + size_t(i0) * out_size;
    if (as_float) {
      cuda::copy_to_target(out, panel.data(), size_t(count) * 4, target);
    } else {
      convert_from<float>(panel.data(), panel16.data(), DType::BF16, size_t(count));
      cuda::copy_to_target(out, panel16.data(), size_t(count) * 2, target);
    }
  }
}

// The upload in two passes over the same list: first sizes (base null), then copies.
struct Uploader {
  char* base = nullptr;
  size_t used = 0;
  const cuda::Target* target = nullptr;

  const void* place(const Tensor& t, bool as_float) {
    const size_t at = used;
    used += aligned(size_t(t.numel()) * (as_float ? 4 : 2));
    if (!base) return nullptr;
    upload_as(t, base + at, as_float, *target);
    return base + at;
  }
  const bf16* weight(const Tensor& t) { return static_cast<const bf16*>(place(t, false)); }
  const float* float_weight(const Tensor& t) { return static_cast<const float*>(place(t, true)); }
  DeviceLinear linear(const Tensor& t) {
    DT_CHECK(t.ndim == 2, "DeviceModel: a linear weight must be 2-D, got ", t.shape_str());
    return {weight(t), t.dim(0), t.dim(1)};
  }
};

}  // namespace

DeviceModel::DeviceModel(const Model& model, const cuda::Target& target) : config_(model.config()) {
  const ModelWeights& w = model.weights();
  const bool tied = w.lm_head.data == w.embed_tokens.data;
  auto place_all = [&](Uploader& up) {
    layers_.clear();
    embed_tokens_ = tied ? up.weight(w.embed_tokens) : nullptr;
    host_embed_tokens_ = tied ? nullptr : &w.embed_tokens;
    norm_ = up.weight(w.norm);
    lm_head_ = tied ? embed_tokens_ : up.weight(w.lm_head);
    for (const LayerWeights& lw : w.layers) {
      DeviceLayer d;
      d.kind = lw.kind;
      d.input_layernorm = up.weight(lw.input_layernorm);
      d.post_attention_layernorm = up.weight(lw.post_attention_layernorm);
      if (lw.kind == LayerKind::LinearAttention) {
        const LinearAttentionWeights& l = lw.linear;
        d.linear.in_proj_qkv = up.linear(l.in_proj_qkv);
        d.linear.in_proj_z = up.linear(l.in_proj_z);
        d.linear.in_proj_b = up.linear(l.in_proj_b);
        d.linear.in_proj_a = up.linear(l.in_proj_a);
        d.linear.out_proj = up.linear(l.out_proj);
        d.linear.conv1d = up.weight(l.conv1d);  // [C, 1, K] is [C, K] in memory
        d.linear.A_log = up.float_weight(l.A_log);
        d.linear.dt_bias = up.float_weight(l.dt_bias);
        d.linear.norm = up.weight(l.norm);
      } else {
        const FullAttentionWeights& a = lw.attn;
        d.attn.q_proj = up.linear(a.q_proj);
        d.attn.k_proj = up.linear(a.k_proj);
        d.attn.v_proj = up.linear(a.v_proj);
        d.attn.o_proj = up.linear(a.o_proj);
        d.attn.q_norm = up.weight(a.q_norm);
        d.attn.k_norm = up.weight(a.k_norm);
      }
      d.mlp.gate_proj = up.linear(lw.mlp.gate_proj);
      d.mlp.up_proj = up.linear(lw.mlp.up_proj);
      d.mlp.down_proj = up.linear(lw.mlp.down_proj);
      layers_.push_back(d);
    }
  };
  Uploader sizing;
  place_all(sizing);
  if (host_embed_tokens_) {
    const Tensor& t = *host_embed_tokens_;
    DT_CHECK(t.is_contiguous() && t.device == Device::CPU && t.ndim == 2 &&
                 t.dim(0) == config_.vocab_size && t.dim(1) == config_.hidden_size,
             "DeviceModel: the host embedding is not a contiguous [", config_.vocab_size, ", ",
             config_.hidden_size, "] table");
  }
  memory_ = cuda::Memory(sizing.used, target);
  Uploader copying{memory_.as<char>(), 0, &target};
  place_all(copying);
}

void DeviceModel::embed(std::span<const int64_t> ids, const int64_t* target_ids, bf16* x,
                        const cuda::Target& target) const {
  const int64_t D = config_.hidden_size, tokens = int64_t(ids.size());
  if (embed_tokens_) {
    embedding_cuda_forward(target_ids, tokens, embed_tokens_, D, x, target);
    return;
  }
  // Gather the rows on the host, as bf16, then one copy.
  const Tensor& t = *host_embed_tokens_;
  const size_t row_bytes = size_t(D) * dtype_size(t.dtype);
  std::vector<uint16_t> rows(size_t(tokens * D));
  std::vector<float> row(t.dtype == DType::BF16 ? 0 : size_t(D));
#pragma omp parallel for schedule(static) firstprivate(row)
  for (int64_t i = 0; i < tokens; ++i) {
    const char* src = static_cast<const char*>(t.data) + size_t(ids[size_t(i)]) * row_bytes;
    uint16_t* dst = rows.data() + size_t(i * D);
    if (t.dtype == DType::BF16) {
      std::memcpy(dst, src, row_bytes);
    } else {
      convert_to<float>(src, t.dtype, row.data(), size_t(D));
      convert_from<float>(row.data(), dst, DType::BF16, size_t(D));
    }
  }
  cuda::copy_to_target(x, rows.data(), rows.size() * sizeof(uint16_t), target);
}

}  // namespace deltatune
