// deltatune preprocess CONFIG [--show N]: tokenizes the config's datasets into the prepared cache
// (train then reuses it), reports what was kept and dropped, and with --show prints N samples with
// the trained tokens marked, so a user sees exactly what will be learned.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "data/cache.h"
#include "model/config.h"
#include "text/tokenizer.h"

namespace deltatune::cli {

namespace fs = std::filesystem;

namespace {

// Trained runs are wrapped in ⟦ ⟧ (or ANSI green on a terminal). Each run is decoded whole, so a
// character split across tokens prints as itself.
void show_sample(const Sample& s, const Tokenizer* tok, bool color) {
  const char* open = color ? "\033[32m" : "⟦";
  const char* close = color ? "\033[0m" : "⟧";
  size_t begin = 0;
  for (size_t i = 1; !s.input_ids.empty() && i <= s.input_ids.size(); ++i) {
    const bool trained = s.labels[begin] != kIgnoreLabel;
    if (i < s.input_ids.size() && (s.labels[i] != kIgnoreLabel) == trained) continue;
    const std::span<const int32_t> run(s.input_ids.data() + begin, i - begin);
    std::string text;
    if (tok) text = tok->decode(run);
    else
      for (const int32_t id : run) text += std::to_string(id) + " ";
    if (trained) text = open + text + close;
    std::fputs(text.c_str(), stdout);
    begin = i;
  }
  std::fputs("\n", stdout);
}

}  // namespace

Action add_preprocess(CLI::App& app) {
  auto* sub = app.add_subcommand("preprocess", "Tokenize the config's datasets into the prepared cache");
  struct Args {
    std::string config;
    int show = 0;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("config", a->config, "the training YAML")->required();
  sub->add_option("--show", a->show, "print N samples with the trained tokens marked ⟦like this⟧");
  return [a] {
    const TrainConfig config = load_train_config(a->config);
    const ModelConfig model = load_model_config((fs::path(config.base_model) / "config.json").string());
    const TrainingData data = prepare_training_data(config, model.vocab_size);
    const DataStats& s = data.stats;
    std::fprintf(stderr,
                 "%lld rows: %lld training samples (%lld tokens, %lld trained), %lld validation; skipped %lld "
                 "malformed, %lld too long (dropped), %lld truncated, %lld with nothing to train\n",
                 (long long)s.rows, (long long)s.train_samples, (long long)s.train_tokens, (long long)s.train_targets,
                 (long long)s.validation_samples, (long long)s.bad_rows_skipped, (long long)s.too_long_dropped,
                 (long long)s.too_long_truncated, (long long)s.without_targets);
    if (a->show > 0) {
      bool text = false;
      for (const DatasetConfig& d : config.datasets) text = text || !d.type.empty();
      std::optional<Tokenizer> tok;
      if (text) tok = Tokenizer::load(config.tokenizer_config);
      for (int i = 0; i < a->show && i < int(data.train.size()); ++i) {
        std::printf("--- sample %d (%lld tokens, %lld trained targets)\n", i, (long long)data.train[size_t(i)].length(),
                    (long long)data.train[size_t(i)].trained_targets());
        show_sample(data.train[size_t(i)], tok ? &*tok : nullptr, false);
      }
    }
    return 0;
  };
}

}  // namespace deltatune::cli
