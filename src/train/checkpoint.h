// Training checkpoints: a folder `checkpoint-<step>` in output_dir holding the adapter (a PEFT
// folder's two files, float32), the optimizer's moments, and trainer_state.json (step, seed,
// totals). Everything else a run needs — data order, dropout masks, learning rate — is a function
// of (seed, step), so resuming from a checkpoint continues bit-identically.
// Written into a temporary folder and renamed into place, so a crash or a full disk during a save
// leaves the previous checkpoints intact; older ones are pruned to save_total_limit.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lora/adapter.h"
#include "train/optimizer.h"

namespace deltatune {

struct TrainerState {
  int64_t global_step = 0;  // optimizer steps done
  int64_t total_steps = 0;
  uint64_t seed = 0;
  int64_t tokens_seen = 0;
  int64_t bad_steps = 0;
  double elapsed_seconds = 0;
  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

// Writes checkpoint-<state.global_step> under output_dir; returns its path.
std::string save_checkpoint(const std::string& output_dir, const LoraAdapter& adapter, AdamW& optimizer,
                            const TrainerState& state, const std::string& base_model);

// Restores adapter factors, optimizer moments and state from a checkpoint folder. The adapter and
// optimizer must already have the checkpoint's shapes (built from the same config).
TrainerState load_checkpoint(const std::string& folder, LoraAdapter& adapter, AdamW& optimizer,
                             const ModelConfig& model);

// checkpoint-* folders of output_dir, oldest step first.
std::vector<std::string> list_checkpoints(const std::string& output_dir);

// Removes the oldest checkpoints beyond `keep` (0 = keep all).
void prune_checkpoints(const std::string& output_dir, int64_t keep);

}  // namespace deltatune
