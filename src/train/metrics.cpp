#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "io/json_file.h"

namespace deltatune {

namespace fs = std::filesystem;

MetricsLog::MetricsLog(const std::string& output_dir, int64_t resume_step)
    : path_((fs::path(output_dir) / "metrics.jsonl").string()) {
  if (!fs::exists(path_)) return;
  if (resume_step <= 0) {
    fs::remove(path_);
    return;
  }
  std::ifstream in(path_);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.value("step", int64_t(0)) <= resume_step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // A line cut short by the interrupted run: dropped.
    }
  }
  write_text_file_atomic(path_, kept);
}

void MetricsLog::append(const nlohmann::json& record) {
  std::ofstream out(path_, std::ios::app);
  out << record.dump() << "\n";
}

namespace {

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

}  // namespace

void write_loss_plot(const std::string& metrics_jsonl, const std::string& svg_path, const std::string& title) {
  std::vector<std::pair<double, double>> train, eval;
  std::ifstream in(metrics_jsonl);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;
    }
    if (!j.contains("step")) continue;
    const double step = j["step"].get<double>();
    if (j.contains("loss") && j["loss"].is_number() && std::isfinite(j["loss"].get<double>()))
      train.push_back({step, j["loss"].get<double>()});
    if (j.contains("eval_loss") && j["eval_loss"].is_number()) eval.push_back({step, j["eval_loss"].get<double>()});
  }
  const double W = 720, H = 420, left = 64, right = 20, top = 40, bottom = 48;
  double x_max = 1, y_min = INFINITY, y_max = -INFINITY;
  for (const auto* series : {&train, &eval})
    for (const auto& [x, y] : *series) {
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  if (!std::isfinite(y_min)) y_min = 0, y_max = 1;
  if (y_max - y_min < 1e-9) y_max = y_min + 1;
  const double pad = 0.05 * (y_max - y_min);
  y_min = std::max(0.0, y_min - pad);
  y_max += pad;
  auto X = [&](double x) { return left + (W - left - right) * x / x_max; };
  auto Y = [&](double y) { return top + (H - top - bottom) * (1 - (y - y_min) / (y_max - y_min)); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n";
  for (int i = 0; i <= 5; ++i) {  // horizontal grid with loss labels
    const double y = y_min + (y_max - y_min) * i / 5;
    s << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << Y(y) << "\" y2=\"" << Y(y)
      << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">"
      << fmt(y) << "</text>\n";
  }
  for (int i = 0; i <= 5; ++i) {
    const double x = x_max * i / 5;
    s << "<text x=\"" << X(x) << "\" y=\"" << H - bottom + 16 << "\" text-anchor=\"middle\">" << fmt(std::round(x))
      << "</text>\n";
  }
  s << "<text x=\"" << W / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">step</text>\n";
  auto polyline = [&](const std::vector<std::pair<double, double>>& pts, const char* color) {
    if (pts.empty()) return;
    s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [x, y] : pts) s << X(x) << "," << Y(y) << " ";
    s << "\"/>\n";
    for (const auto& [x, y] : pts)
      if (pts.size() < 60) s << "<circle cx=\"" << X(x) << "\" cy=\"" << Y(y) << "\" r=\"2.5\" fill=\"" << color << "\"/>\n";
  };
  polyline(train, "#1f77b4");
  polyline(eval, "#d62728");
  s << "<text x=\"" << W - right - 150 << "\" y=\"" << top + 14 << "\" fill=\"#1f77b4\">train loss</text>\n";
  if (!eval.empty()) s << "<text x=\"" << W - right - 150 << "\" y=\"" << top + 30 << "\" fill=\"#d62728\">eval loss</text>\n";
  s << "</svg>\n";
  write_text_file_atomic(svg_path, s.str());
}

}  // namespace deltatune
