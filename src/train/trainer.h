// `deltatune train`: the fine-tuning job end to end. Loads the model and data, builds or resumes
// the adapter, runs optimizer steps with progress, metrics, evaluation and checkpoints, and writes
// the PEFT adapter folder to output_dir.
#pragma once

#include "train/train_config.h"

namespace deltatune {

// Returns the process exit code: 0 done, 130 interrupted (a checkpoint was saved), throws Error on
// failure.
int run_training(const TrainConfig& config);

}  // namespace deltatune
