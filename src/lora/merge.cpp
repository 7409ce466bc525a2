#include "lora/merge.h"

#include <filesystem>
#include <map>
#include <vector>

#include "io/safetensors.h"
#include "ops/matmul.h"

namespace deltatune {

namespace fs = std::filesystem;

HostTensor merged_weight(const Tensor& base, const LoraModule& m, double scaling) {
  DT_CHECK(base.ndim == 2 && base.dim(0) == m.out && base.dim(1) == m.in, "merging ", m.name, ": base weight ",
           base.shape_str(), " does not match the adapter's [", m.out, ", ", m.in, "]");
  const int64_t r = m.A.dim(0);
  std::vector<double> w(static_cast<size_t>(m.out * m.in)), a(static_cast<size_t>(r * m.in)), b(static_cast<size_t>(m.out * r));
  tensor_to(base, w.data());
  tensor_to(m.A.view(), a.data());
  tensor_to(m.B.view(), b.data());
  gemm<double>(false, false, m.out, m.in, r, scaling, b.data(), r, a.data(), m.in, 1.0, w.data(), m.in);
  HostTensor out(base.dtype, base.shape_vector());
  convert_from<double>(w.data(), out.view().data, base.dtype, w.size());
  return out;
}

void merge_adapter_into_checkpoint(const std::string& model_dir, const LoraAdapter& adapter, const std::string& out_dir) {
  DT_CHECK(fs::weakly_canonical(model_dir) != fs::weakly_canonical(out_dir), "merge: the output folder must not ",
           "be the base model's folder (", model_dir, ")");
  const TensorStore store(model_dir);
  std::map<std::string, const LoraModule*> by_weight;
  // By the base's own names (the adapter may name the other layout's: lora/adapter.h).
  const ModelConfig config = load_model_config((fs::path(model_dir) / "config.json").string());
  for (const LoraModule& m : adapter.modules())
    by_weight[str_cat(config.text_prefix(), "layers.", m.layer, ".", linear_kind_path(m.kind), ".weight")] = &m;
  fs::create_directories(out_dir);
  size_t merged = 0;
  for (const auto& file : store.files()) {
    std::vector<HostTensor> keep;
    std::vector<NamedTensor> tensors;
    for (const SafetensorsEntry& e : file->entries()) {
      const Tensor t = file->tensor(e);
      const auto it = by_weight.find(e.name);
      if (it == by_weight.end()) {
        tensors.push_back({e.name, t});
        continue;
      }
      keep.push_back(merged_weight(t, *it->second, adapter.config().scaling()));
      tensors.push_back({e.name, keep.back().view()});
      ++merged;
    }
    write_safetensors((fs::path(out_dir) / fs::path(file->path()).filename()).string(), tensors, file->metadata());
  }
  DT_CHECK(merged == adapter.modules().size(), "merge: ", adapter.modules().size() - merged,
           " adapted modules have no weight in ", model_dir);
  // Everything else of the base folder: config, index, tokenizer, template, generation config.
  for (const auto& e : fs::directory_iterator(model_dir)) {
    if (!e.is_regular_file() || e.path().extension() == ".safetensors") continue;
    fs::copy_file(e.path(), fs::path(out_dir) / e.path().filename(), fs::copy_options::overwrite_existing);
  }
}

}  // namespace deltatune
