#include "train/trainer.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <new>

#include "core/arena.h"
#include "core/threads.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "data/encode.h"
#include "data/packing.h"
#include "model/presets.h"
#include "model/qwen35.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/step.h"
#if DELTATUNE_CUDA
#include "core/cuda/cuda_check.h"
#include "train/cuda/step_cuda.h"
#endif

namespace deltatune {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  // A second Ctrl-C ends the process at once.
  std::signal(sig, SIG_DFL);
}

struct SignalGuard {
  SignalGuard() {
    g_stop_signal = 0;
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
  }
  ~SignalGuard() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

LoraConfig lora_config(const TrainConfig& t) {
  LoraConfig c;
  c.r = t.lora_r;
  c.alpha = t.lora_alpha;
  c.dropout = t.lora_dropout;
  c.use_rslora = t.peft_use_rslora;
  c.target_modules = t.lora_target_modules;
  c.target_all_linear = t.lora_target_linear;
  return c;
}

// Where the steps run: the CPU path, or a run resident on the GPU.
struct StepBackend {
#if DELTATUNE_CUDA
  std::unique_ptr<CudaTrainingRun> gpu;
#endif
  bool on_gpu() const {
#if DELTATUNE_CUDA
    return gpu != nullptr;
#else
    return false;
#endif
  }
};

// "auto" becomes cuda when this build has CUDA and a GPU is present, else cpu.
std::string resolve_device(const TrainConfig& t) {
#if DELTATUNE_CUDA
  if (t.device == "cuda") cuda::require_device();
  if (t.device == "auto") return cuda::device_present() ? "cuda" : "cpu";
#endif
  return t.device == "auto" ? "cpu" : t.device;
}

// Mean loss of the validation samples (micro-batches of the training layout, no shuffling).
double evaluate(const Model& model, LoraAdapter& adapter, StepBackend& backend,
                const std::vector<Sample>& samples, const BatchingOptions& batching, Arena& arena) {
  BatchingOptions o = batching;
  o.shuffle = false;
  LoraRun lora;
  lora.adapter = &adapter;
  double sum = 0;
  int64_t targets = 0;
  for (const auto& indices : plan_epoch(samples, o, 0)) {
    const Batch batch = make_sample_batch(samples, indices);
#if DELTATUNE_CUDA
    const LossSum l = backend.on_gpu() ? backend.gpu->loss(batch) : model_loss<float>(model, lora, batch, arena);
#else
    const LossSum l = model_loss<float>(model, lora, batch, arena);
#endif
    sum += l.sum;
    targets += l.targets;
  }
  return targets > 0 ? sum / double(targets) : NAN;
}

std::string resolve_resume(const TrainConfig& t) {
  const std::string& r = t.resume_from_checkpoint;
  if (r.empty() || r == "false" || r == "False") return "";
  if (r == "true" || r == "True" || r == "latest") {
    const auto all = list_checkpoints(t.output_dir);
    DT_CHECK(!all.empty(), t.source, ": resume_from_checkpoint: no checkpoint-* folder in ", t.output_dir);
    return all.back();
  }
  DT_CHECK(fs::is_directory(r), t.source, ": resume_from_checkpoint: ", r, " is not a folder");
  return r;
}

}  // namespace

int run_training(const TrainConfig& config) {
  if (config.threads > 0) set_num_threads(config.threads);
  fs::create_directories(config.output_dir);
  std::fprintf(stderr, "loading %s\n", config.base_model.c_str());
  const Model model = Model::load(config.base_model);
  const ModelConfig& mc = model.config();

  const TrainingData data = prepare_training_data(config, mc.vocab_size);

  BatchingOptions batching;
  batching.sequence_len = config.sequence_len;
  batching.micro_batch_size = config.micro_batch_size;
  batching.sample_packing = config.sample_packing;
  batching.shuffle = config.shuffle;
  batching.seed = config.seed;
  PackingReport packing;
  const int64_t micro_per_epoch = int64_t(plan_epoch(data.train, batching, 0, &packing).size());
  const int64_t ga = config.gradient_accumulation_steps;
  const int64_t steps_per_epoch = (micro_per_epoch + ga - 1) / ga;
  const int64_t total_steps =
      config.max_steps > 0 ? config.max_steps : int64_t(std::ceil(config.num_epochs * double(steps_per_epoch)));

  LoraAdapter adapter = config.lora_model_dir.empty()
                            ? LoraAdapter::create(mc, lora_config(config), DType::F32, config.seed)
                            : LoraAdapter::load_peft(config.lora_model_dir, mc, DType::F32);
  AdamW optimizer(adapter, AdamWConfig{config.adam_beta1, config.adam_beta2, config.adam_epsilon, config.weight_decay});
  const Schedule schedule{parse_schedule_kind(config.lr_scheduler), config.learning_rate,
                          warmup_steps_for(config.warmup_steps, config.warmup_ratio, total_steps), total_steps};

  TrainerState state;
  state.total_steps = total_steps;
  state.seed = config.seed;
  if (const std::string from = resolve_resume(config); !from.empty()) {
    state = load_checkpoint(from, adapter, optimizer, mc);
    DT_CHECK(state.seed == config.seed && state.total_steps == total_steps, from,
             ": the checkpoint was made with seed ", state.seed, " and ", state.total_steps,
             " total steps; this config gives seed ", config.seed, " and ", total_steps,
             " steps. Resuming would not continue the same run.");
    std::fprintf(stderr, "resuming from %s at step %lld\n", from.c_str(), (long long)state.global_step);
  }

  const std::string device = resolve_device(config);
  StepBackend backend;
#if DELTATUNE_CUDA
  if (device == "cuda") {
    std::fprintf(stderr, "uploading the model to the GPU (bf16)\n");
    backend.gpu = std::make_unique<CudaTrainingRun>(model, adapter, optimizer);
  }
#endif

  // Summary.
  double base_params = 0, weight_bytes = 0;
  for (const auto& [name, t] : model.named_tensors()) base_params += double(t.numel()), weight_bytes += double(t.nbytes());
  const double lora_params = double(adapter.num_parameters());
  const int64_t tokens_per_micro = config.micro_batch_size * config.sequence_len;  // an upper bound
  const double activation_bytes = double(forward_activation_bytes(mc, tokens_per_micro, 4)) +
                                  double(mc.num_layers * tokens_per_micro * mc.hidden_size * 4);
  std::fprintf(stderr,
               "model        %s: %s, %d layers, %.1f M parameters (%s of weights)\n"
               "adapter      LoRA r=%d alpha=%g on %zu modules: %.2f M trainable parameters (%.3f%% of the total)\n"
               "data         %lld training samples (%lld tokens, %lld trained targets), %lld validation\n"
               "             skipped: %lld malformed, %lld too long (dropped), %lld truncated, %lld with nothing to train\n"
               "batches      %lld micro-batches per epoch (%s%s), %lld per step, %lld steps per epoch, %lld steps\n"
               "memory       about %s: weights %s + activations %s + adapter and AdamW %s\n"
               "device       %s\n",
               config.base_model.c_str(), mc.model_type.c_str(), mc.num_layers, base_params / 1e6,
               human_bytes(weight_bytes).c_str(), config.lora_r, config.lora_alpha, adapter.modules().size(),
               lora_params / 1e6, 100 * lora_params / (base_params + lora_params),
               (long long)data.stats.train_samples, (long long)data.stats.train_tokens,
               (long long)data.stats.train_targets, (long long)data.stats.validation_samples,
               (long long)data.stats.bad_rows_skipped, (long long)data.stats.too_long_dropped,
               (long long)data.stats.too_long_truncated, (long long)data.stats.without_targets,
               (long long)micro_per_epoch, config.sample_packing ? "packed" : "unpacked",
               config.sample_packing ? (", packing efficiency " + std::to_string(int(100 * packing.efficiency())) + "%").c_str() : "",
               (long long)ga, (long long)steps_per_epoch, (long long)total_steps,
               human_bytes(weight_bytes + activation_bytes + lora_params * 16).c_str(), human_bytes(weight_bytes).c_str(),
               human_bytes(activation_bytes).c_str(), human_bytes(lora_params * 16).c_str(),
               device == "cuda" ? "cuda (bf16 base and activations, float32 LoRA factors and AdamW)" : "cpu (float32)");

  MetricsLog metrics(config.output_dir, state.global_step);
  const std::string plot_path = (fs::path(config.output_dir) / "loss.svg").string();
  Progress progress(total_steps, config.logging_steps, state.global_step);
  SignalGuard signals;
  Arena arena;
  std::vector<std::vector<int64_t>> epoch_plan;
  int64_t planned_epoch = -1;
  auto save = [&](const char* why) {
#if DELTATUNE_CUDA
    if (backend.on_gpu()) backend.gpu->pull(adapter, optimizer);  // the host copies are what is saved
#endif
    state.elapsed_seconds += progress.elapsed_seconds();
    const std::string dir = save_checkpoint(config.output_dir, adapter, optimizer, state, config.base_model);
    state.elapsed_seconds -= progress.elapsed_seconds();
    prune_checkpoints(config.output_dir, config.save_total_limit);
    write_loss_plot(metrics.path(), plot_path, "deltatune: " + config.base_model);
    progress.message(std::string("saved ") + dir + " (" + why + ")");
    return dir;
  };

  while (state.global_step < total_steps) {
    const int64_t step = state.global_step;
    const int64_t epoch = step / steps_per_epoch, in_epoch = step % steps_per_epoch;
    if (epoch != planned_epoch) {
      epoch_plan = plan_epoch(data.train, batching, epoch);
      planned_epoch = epoch;
    }
    std::vector<Batch> micro;
    for (int64_t k = in_epoch * ga; k < std::min<int64_t>((in_epoch + 1) * ga, int64_t(epoch_plan.size())); ++k)
      micro.push_back(make_sample_batch(data.train, epoch_plan[size_t(k)]));
    StepOptions options;
    options.checkpointing = config.gradient_checkpointing;
    options.kept_layers = config.checkpointing_kept_layers;
    options.max_grad_norm = config.max_grad_norm;
    options.dropout_seed = config.seed * 0x100000001b3ull + uint64_t(step);
    StepResult r;
    try {
#if DELTATUNE_CUDA
      if (backend.on_gpu())
        r = backend.gpu->step(schedule, step, micro, options);
      else
#endif
        r = train_step<float>(model, adapter, optimizer, schedule, step, micro, options, arena);
    } catch (const std::bad_alloc&) {
      fail("out of memory in step ", step, ": the model needs ", human_bytes(weight_bytes), " of weights, and a ",
           "micro-batch of ", micro.empty() ? 0 : micro[0].tokens(), " tokens about ", human_bytes(activation_bytes),
           " of activations; lower micro_batch_size or sequence_len, or keep gradient_checkpointing on");
    }
    ++state.global_step;
    state.tokens_seen += r.tokens;
    if (r.skipped) {
      ++state.bad_steps;
      progress.message("warning: step " + std::to_string(step + 1) + " had a non-finite loss or gradient (loss " +
                       std::to_string(r.loss) + ", grad norm " + std::to_string(r.grad_norm) + "): skipped (" +
                       std::to_string(state.bad_steps) + " of at most " + std::to_string(config.max_bad_steps) + ")");
      DT_CHECK(state.bad_steps < config.max_bad_steps, "aborting: ", state.bad_steps,
               " steps had non-finite losses or gradients (max_bad_steps). Lower the learning rate, check the ",
               "data, or resume from the last checkpoint.");
    }
    progress.step(state.global_step, r.loss, r.lr, r.grad_norm, r.tokens, r.skipped);
    metrics.append({{"step", state.global_step},
                    {"epoch", double(state.global_step) / double(steps_per_epoch)},
                    {"loss", std::isfinite(r.loss) ? nlohmann::json(r.loss) : nlohmann::json(nullptr)},
                    {"lr", r.lr},
                    {"grad_norm", std::isfinite(r.grad_norm) ? nlohmann::json(r.grad_norm) : nlohmann::json(nullptr)},
                    {"tokens", r.tokens},
                    {"targets", r.targets},
                    {"skipped", r.skipped},
                    {"elapsed_s", state.elapsed_seconds + progress.elapsed_seconds()}});
    const bool last = state.global_step == total_steps;
    if (!data.validation.empty() && ((config.eval_steps > 0 && state.global_step % config.eval_steps == 0) || last)) {
      const double eval_loss = evaluate(model, adapter, backend, data.validation, batching, arena);
      metrics.append({{"step", state.global_step}, {"eval_loss", eval_loss}});
      char text[96];
      std::snprintf(text, sizeof text, "eval at step %lld: loss %.4f", (long long)state.global_step, eval_loss);
      progress.message(text);
    }
    if (g_stop_signal != 0) {
      const std::string dir = save("interrupted");
      progress.finish();
      std::fprintf(stderr, "stopped by %s after step %lld. To continue, set resume_from_checkpoint: %s (or true)\n",
                   g_stop_signal == SIGINT ? "Ctrl-C" : "SIGTERM", (long long)state.global_step, dir.c_str());
      return 130;
    }
    if (config.save_steps > 0 && state.global_step % config.save_steps == 0 && !last) save("save_steps");
  }
  progress.finish();
  save("end of training");  // pulls the GPU's factors into `adapter` first
  adapter.save_peft(config.output_dir, config.base_model, DType::F32);
  std::fprintf(stderr, "done: %lld steps, %lld tokens; adapter in %s (adapter_config.json, "
               "adapter_model.safetensors); loss curve %s\n",
               (long long)state.global_step, (long long)state.tokens_seen, config.output_dir.c_str(), plot_path.c_str());
  return 0;
}

}  // namespace deltatune
