// What a run records: one JSON object per line in output_dir/metrics.jsonl (train steps and
// evaluations), and a loss curve drawn from it as an SVG (train and eval loss against step).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace deltatune {

class MetricsLog {
 public:
  // Opens output_dir/metrics.jsonl. When resuming at `resume_step`, records of later steps (from
  // the interrupted run) are dropped so the log matches the run that continues.
  MetricsLog(const std::string& output_dir, int64_t resume_step);
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Reads metrics.jsonl and writes an SVG plot of "loss" and "eval_loss" against "step".
void write_loss_plot(const std::string& metrics_jsonl, const std::string& svg_path, const std::string& title);

}  // namespace deltatune
