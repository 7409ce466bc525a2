// deltatune export-gguf-lora: a PEFT adapter as llama.cpp's LoRA adapter loader reads it
// (src/llama-adapter.cpp llama_adapter_lora_init_impl; the same file convert_lora_to_gguf.py
// writes, minus its value-head bug, llama.cpp issue #21125).
#include <cmath>

#include "export/gguf_export.h"
#include "export/qwen35_gguf.h"
#include "io/gguf.h"

namespace deltatune {

namespace {

// PEFT's factor as float64, row-major [rows, cols].
std::vector<double> to_double(const HostTensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  convert_to<double>(t.view().data, t.dtype(), v.data(), v.size());
  return v;
}

struct LoraFactors {
  std::vector<float> a, b;  // row-major [r, in] and [out, r], permuted as the base weight is
};

// W[perm, :] = B[perm, :] · A and W[:, perm] = B · A[:, perm]: each permutation of the base
// weight lands on one factor, so the product is never formed.
LoraFactors permuted_factors(const LoraModule& m, const GgufTensorSpec& spec) {
  const int64_t rank = m.A.dim(0);
  const std::vector<double> A = to_double(m.A), B = to_double(m.B);
  LoraFactors f;
  f.a.resize(A.size());
  f.b.resize(B.size());
  for (int64_t k = 0; k < rank; ++k)
    for (int64_t c = 0; c < m.in; ++c) {
      const int64_t src = spec.column_order.empty() ? c : spec.column_order[size_t(c)];
      f.a[size_t(k * m.in + c)] = float(A[size_t(k * m.in + src)]);
    }
  for (int64_t r = 0; r < m.out; ++r) {
    const int64_t src = spec.row_order.empty() ? r : spec.row_order[size_t(r)];
    for (int64_t k = 0; k < rank; ++k) f.b[size_t(r * rank + k)] = float(B[size_t(src * rank + k)]);
  }
  return f;
}

}  // namespace

void export_gguf_lora(const LoraAdapter& adapter, const Model& base, const std::string& out_path,
                      const GgufLoraExport& options) {
  with_context("exporting the adapter to " + out_path, [&] {
    DT_CHECK(options.type == GgmlType::F32 || options.type == GgmlType::F16 || options.type == GgmlType::BF16,
             "LoRA factors are written as f32, f16 or bf16, not ", ggml_type_name(options.type));
    const std::vector<GgufTensorSpec> specs = qwen35_gguf_tensors(base.config(), base.weights());
    const int rank = adapter.config().r;
    // llama.cpp scales by alpha / rank with rank = lora_b's ne[0] (llama-adapter.h get_scale).
    const double alpha = adapter.config().scaling() * double(rank);
    const GgufMetadata metadata = {
        {"general.architecture", GgufValue::string(kQwen35Arch)},
        {"general.type", GgufValue::string("adapter")},
        {"general.name", GgufValue::string(options.name)},
        {"adapter.type", GgufValue::string("lora")},
        {"adapter.lora.alpha", GgufValue::scalar<float>(float(alpha))},
        {"general.quantization_version", GgufValue::scalar<uint32_t>(2)},
    };

    std::vector<LoraFactors> factors;
    std::vector<GgufTensorPlan> plans;
    for (const GgufTensorSpec& spec : specs) {
      if (!spec.linear) continue;
      const LoraModule* m = adapter.find(spec.linear->first, spec.linear->second);
      if (!m) continue;
      DT_CHECK(m->A.dim(0) == rank && m->B.dim(1) == rank, m->name, ": rank ", m->A.dim(0),
               " differs from the adapter's r = ", rank, " (rank_pattern is not supported)");
      DT_CHECK(spec.ne == (std::vector<int64_t>{m->in, m->out}), m->name, ": adapter [", m->out, ", ", m->in,
               "] does not fit the base weight ", spec.name, " ne ", shape_str(spec.ne));
      factors.push_back(permuted_factors(*m, spec));
      plans.push_back({spec.name + ".lora_a", options.type, {m->in, rank}});
      plans.push_back({spec.name + ".lora_b", options.type, {rank, m->out}});
    }
    DT_CHECK(plans.size() == 2 * adapter.modules().size(), adapter.modules().size() - plans.size() / 2,
             " adapter modules have no weight in the base model");

    GgufWriter writer(out_path, metadata, plans);
    std::vector<uint8_t> bytes;
    for (const LoraFactors& f : factors) {
      for (const std::vector<float>* v : {&f.a, &f.b}) {
        bytes.resize(size_t(ggml_row_bytes(options.type, int64_t(v->size()))));
        ggml_encode(v->data(), int64_t(v->size()), options.type, bytes.data());
        writer.write_data(bytes.data(), bytes.size());
      }
    }
    writer.commit();
  });
}

}  // namespace deltatune
