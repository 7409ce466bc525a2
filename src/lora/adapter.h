// A LoRA adapter with PEFT's semantics (spec/formats.md, "PEFT LoRA adapter folder"):
// for each targeted linear layer W [out, in], factors A [r, in] and B [out, r] and
//   y = W x + scaling * B (A dropout(x)),  scaling = alpha / r  (rsLoRA: alpha / sqrt(r)).
// Targets are chosen by module-name suffix, as PEFT's target_modules list does (a name matches a
// target when it equals it or ends with "." + target), or by a regular expression matched against
// the whole name (PEFT's string form); `target_all_linear` takes every linear layer but lm_head.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace deltatune {

// The linear layers of a Qwen3.5 decoder layer that LoRA can adapt.
enum class LinearKind : uint8_t {
  QProj, KProj, VProj, OProj,                        // self_attn
  InProjQkv, InProjZ, InProjA, InProjB, OutProj,     // linear_attn
  GateProj, UpProj, DownProj,                        // mlp
};
constexpr int kLinearKinds = 12;
// "self_attn.q_proj", "linear_attn.in_proj_qkv", "mlp.gate_proj", ...
const char* linear_kind_path(LinearKind kind);
// Which layer kind has it (mlp: both).
bool linear_kind_in_layer(LinearKind kind, LayerKind layer);

struct LoraConfig {
  int r = 16;
  double alpha = 16;
  double dropout = 0;
  bool use_rslora = false;
  std::vector<std::string> target_modules;  // suffixes (PEFT list form)
  std::string target_regex;                 // PEFT string form: re.fullmatch on the module name
  bool target_all_linear = false;
  double scaling() const;
};

struct LoraModule {
  std::string name;  // module path, e.g. "model.layers.0.linear_attn.in_proj_qkv"
  int layer = 0;
  LinearKind kind = LinearKind::QProj;
  int64_t in = 0, out = 0;
  HostTensor A, B;    // [r, in], [out, r], in the adapter's parameter dtype
  HostTensor dA, dB;  // gradients, same shapes and dtype
};

class LoraAdapter {
 public:
  LoraAdapter() = default;
  // New factors with PEFT's init: A Kaiming-uniform (a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))),
  // B zero. param_dtype: F32 for training, F64 for the float64 reference mode.
  static LoraAdapter create(const ModelConfig& model, const LoraConfig& config, DType param_dtype,
                            uint64_t seed);
  // A PEFT adapter folder: adapter_config.json + adapter_model.safetensors (factors of any float
  // dtype, converted to param_dtype). Module names of either layout (model.layers.N.* or
  // model.language_model.layers.N.*) apply to either; the modules keep the file's names.
  static LoraAdapter load_peft(const std::string& folder, const ModelConfig& model, DType param_dtype);
  // Writes a PEFT folder (atomically per file) that PEFT 0.21 loads.
  void save_peft(const std::string& folder, const std::string& base_model_name_or_path,
                 DType file_dtype = DType::F32) const;

  const LoraConfig& config() const { return config_; }
  DType param_dtype() const { return param_dtype_; }
  std::vector<LoraModule>& modules() { return modules_; }
  const std::vector<LoraModule>& modules() const { return modules_; }
  const LoraModule* find(int layer, LinearKind kind) const;
  LoraModule* find(int layer, LinearKind kind);
  void zero_grad();
  int64_t num_parameters() const;
  // PEFT's tensor names: "base_model.model.<module>.lora_A.weight" / "lora_B.weight".
  static std::string peft_name(const std::string& module, char factor);

 private:
  void index_modules(int num_layers);
  LoraConfig config_;
  DType param_dtype_ = DType::F32;
  std::vector<LoraModule> modules_;
  std::vector<std::array<int, kLinearKinds>> by_layer_;  // index into modules_, or -1
};

// The module names of every linear layer the model has (for target matching and messages).
std::vector<std::pair<std::string, std::pair<int, LinearKind>>> model_linear_modules(const ModelConfig& model);

// Does `module` match `config`'s targets (PEFT rules)?
bool lora_target_matches(const LoraConfig& config, const std::string& module);

}  // namespace deltatune
