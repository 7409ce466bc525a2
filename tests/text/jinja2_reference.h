// Renderings by Python's jinja2, configured as transformers configures it, for the tests to compare
// with byte for byte: tests/text/render_with_jinja2.py run with the python3 on PATH (Debian's
// python3-jinja2 in CI; scripts/install-deps.sh installs it).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace deltatune::testing_util {

// One {"output": text} or {"error": "Type: message"} per input line.
inline std::vector<nlohmann::ordered_json> jinja2_renderings(const std::string& mode_and_files) {
  const std::string helper = (std::filesystem::path(__FILE__).parent_path() / "render_with_jinja2.py").string();
  const std::string command = "python3 " + helper + " " + mode_and_files;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  if (!pipe) return {};
  std::string text;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) text.append(buf, n);
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << command << " failed: is python3-jinja2 installed? (scripts/install-deps.sh)";
  std::vector<nlohmann::ordered_json> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(nlohmann::ordered_json::parse(text.substr(start, nl - start)));
  return out;
}

// "" when equal, else where and how they first differ.
inline std::string first_difference(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  auto around = [i](const std::string& s) {
    const size_t from = i < 40 ? 0 : i - 40;
    return nlohmann::json(s.substr(from, 80)).dump();
  };
  return "first difference at byte " + std::to_string(i) + " (lengths " + std::to_string(got.size()) + " and " +
         std::to_string(want.size()) + ")\n    ours:   " + around(got) + "\n    jinja2: " + around(want);
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  if (!f) return lines;
  std::string text;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    if (nl > start) lines.push_back(text.substr(start, nl - start));
  return lines;
}

}  // namespace deltatune::testing_util
