// What the user sees while training: on a terminal a live line (step/total, loss, learning rate,
// tokens/s, elapsed, ETA) redrawn in place; otherwise plain log lines every logging_steps.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace deltatune {

class Progress {
 public:
  Progress(int64_t total_steps, int64_t logging_steps, int64_t start_step);
  void step(int64_t step, double loss, double lr, double grad_norm, int64_t tokens, bool skipped);
  // A line that must stay (eval, checkpoint, warning): clears the live line first.
  void message(const std::string& text);
  void finish();
  double elapsed_seconds() const;

 private:
  int64_t total_, logging_, start_;
  bool tty_;
  bool live_shown_ = false;
  std::chrono::steady_clock::time_point begin_;
  int64_t tokens_ = 0;
};

std::string format_duration(double seconds);

}  // namespace deltatune
