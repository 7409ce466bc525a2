// deltatune info MODEL: what a checkpoint holds and what it needs.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"
#include "io/gguf.h"
#include "model/gguf_model.h"
#include "model/presets.h"
#include "model/weights.h"

namespace deltatune::cli {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.3fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.3fM", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

// Which group of parameters a tensor belongs to, for the breakdown.
std::string group_of(const std::string& name) {
  if (name.find("embed_tokens") != std::string::npos) return "embedding";
  if (name == "lm_head.weight") return "lm_head";
  if (name.find("linear_attn.") != std::string::npos) return "gated deltanet";
  if (name.find("self_attn.") != std::string::npos) return "full attention";
  if (name.find("mlp.") != std::string::npos) return "mlp";
  return "norms";
}

int run_info(const std::string& path) {
  const Model model = Model::load(path);
  const ModelConfig& c = model.config();
  std::printf("model        %s\n", path.c_str());
  if (const GgufFile* gguf = model.gguf())
    std::printf("architecture qwen35 GGUF (matrices %s), read as %s (Qwen3_5ForCausalLM names, '%s')\n",
                ggml_type_name(gguf_model_matrix_type(*gguf)), c.model_type.c_str(), c.text_prefix().c_str());
  else
    std::printf("architecture %s (%s, tensors under '%s')\n", c.model_type.c_str(),
                c.layout == CheckpointLayout::CausalLM ? "Qwen3_5ForCausalLM"
                                                       : "Qwen3_5ForConditionalGeneration",
                c.text_prefix().c_str());
  std::string pattern;
  for (LayerKind k : c.layer_kinds) pattern += k == LayerKind::FullAttention ? 'A' : 'L';
  std::printf("layers       %d: %d gated deltanet (L), %d full attention (A)\n", c.num_layers,
              c.count_layers(LayerKind::LinearAttention), c.count_layers(LayerKind::FullAttention));
  std::printf("pattern      %s\n", pattern.c_str());
  std::printf("hidden       %lld, mlp %lld, vocab %lld, %s embeddings\n", (long long)c.hidden_size,
              (long long)c.intermediate_size, (long long)c.vocab_size,
              c.tie_word_embeddings ? "tied" : "untied");
  std::printf("attention    %d heads, %d kv heads, head dim %d, rotary dim %d, theta %g\n",
              c.num_heads, c.num_kv_heads, c.head_dim, c.rotary_dim(), c.rope_theta);
  std::printf("deltanet     %d key heads x %d, %d value heads x %d, conv kernel %d\n",
              c.linear_num_key_heads, c.linear_key_head_dim, c.linear_num_value_heads,
              c.linear_value_head_dim, c.linear_conv_kernel);

  std::map<std::string, double> params;
  std::map<std::string, double> dtype_bytes;
  double total = 0, bytes = 0;
  for (const auto& [name, t] : model.named_tensors()) {
    params[group_of(name)] += double(t.numel());
    dtype_bytes[dtype_name(t.dtype)] += double(t.nbytes());
    total += double(t.numel());
    bytes += double(t.nbytes());
  }
  std::printf("parameters   %s\n", human_count(total).c_str());
  for (const auto& [group, n] : params)
    std::printf("  %-15s %12s  %5.1f%%\n", group.c_str(), human_count(n).c_str(), 100 * n / total);
  std::printf("dtypes      ");
  for (const auto& [name, b] : dtype_bytes) std::printf(" %s %s", name.c_str(), human_bytes(b).c_str());
  std::printf("\n");
  std::printf("memory       weights %s (kept in their file dtype%s)\n", human_bytes(bytes).c_str(),
              model.gguf() ? "; GGUF tensors not reordered stay mapped from the file" : "");
  for (int64_t tokens : {512, 4096})
    std::printf("             forward of %lld tokens in float32: about %s of activations and logits\n",
                (long long)tokens, human_bytes(double(forward_activation_bytes(c, tokens, 4))).c_str());
  return 0;
}

}  // namespace

Action add_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "Describe a Qwen3.5 checkpoint: layers, parameters, memory");
  auto path = std::make_shared<std::string>();
  sub->add_option("model", *path, "Hugging Face checkpoint folder or qwen35 GGUF file")->required();
  return [path] { return run_info(*path); };
}

}  // namespace deltatune::cli
