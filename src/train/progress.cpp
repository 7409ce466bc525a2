#include "train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace deltatune {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const int64_t s = int64_t(seconds + 0.5);
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  else std::snprintf(b, sizeof b, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return b;
}

Progress::Progress(int64_t total_steps, int64_t logging_steps, int64_t start_step)
    : total_(total_steps), logging_(logging_steps > 0 ? logging_steps : 1), start_(start_step),
      tty_(::isatty(::fileno(stderr)) != 0), begin_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin_).count();
}

void Progress::step(int64_t step, double loss, double lr, double grad_norm, int64_t tokens, bool skipped) {
  tokens_ += tokens;
  const double elapsed = elapsed_seconds();
  const double done = double(step - start_);
  const double eta = done > 0 ? elapsed / done * double(total_ - step) : NAN;
  const double tps = elapsed > 0 ? double(tokens_) / elapsed : 0;
  char line[256];
  if (tty_) {
    const int width = 24;
    const int filled = total_ > 0 ? int(width * double(step) / double(total_)) : 0;
    std::string bar(size_t(filled), '#');
    bar += std::string(size_t(width - filled), '.');
    std::snprintf(line, sizeof line, "\r[%s] %lld/%lld loss %.4f lr %.2e %.0f tok/s %s ETA %s%s\033[K",
                  bar.c_str(), (long long)step, (long long)total_, loss, lr, tps, format_duration(elapsed).c_str(),
                  format_duration(eta).c_str(), skipped ? " (skipped)" : "");
    std::fputs(line, stderr);
    std::fflush(stderr);
    live_shown_ = true;
  } else if (step % logging_ == 0 || step == total_ || skipped) {
    std::snprintf(line, sizeof line, "step %lld/%lld loss %.4f lr %.3e grad_norm %.3f %.0f tok/s elapsed %s eta %s%s\n",
                  (long long)step, (long long)total_, loss, lr, grad_norm, tps, format_duration(elapsed).c_str(),
                  format_duration(eta).c_str(), skipped ? " SKIPPED (non-finite)" : "");
    std::fputs(line, stderr);
  }
}

void Progress::message(const std::string& text) {
  if (tty_ && live_shown_) std::fputs("\r\033[K", stderr);
  std::fprintf(stderr, "%s\n", text.c_str());
  live_shown_ = false;
}

void Progress::finish() {
  if (tty_ && live_shown_) std::fputs("\n", stderr);
  live_shown_ = false;
}

}  // namespace deltatune
