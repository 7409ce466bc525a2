// Encode speed of deltatune's tokenizer on one thread, printed as JSON: a standalone program
// (scripts/build_tokenizer_speed.sh links it statically) so it runs beside tokenizers' own
// measurement on the machine that has tokenizers (docs/performance.md, "Tokenizer").
//   tokenizer_speed TOKENIZER_JSON CORPUS_JSONL [MEGABYTES]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../tokenizer_text.h"
#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON CORPUS_JSONL [MEGABYTES]\n", argv[0]);
    return 2;
  }
  try {
    const auto tokenizer = deltatune::Tokenizer::load(argv[1]);
    size_t bytes = 0;
    const auto lines = deltatune::tokenizer_bench_lines(argv[2], argc > 3 ? std::atof(argv[3]) : 10.0, &bytes);
    auto best_seconds = [&](bool offsets) {
      double best = 1e30;
      for (int run = 0; run < 3; ++run) {
        size_t tokens = 0;
        std::vector<std::pair<size_t, size_t>> spans;
        const auto start = std::chrono::steady_clock::now();
        for (const auto& line : lines)
          tokens += (offsets ? tokenizer.encode_with_offsets(line, &spans) : tokenizer.encode(line)).size();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::min(best, s);
        if (tokens == 0) std::fprintf(stderr, "no tokens\n");
      }
      return best;
    };
    const double plain = best_seconds(false), with_offsets = best_seconds(true);
    std::string cpu = "?";
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);)
      if (line.rfind("model name", 0) == 0) {
        cpu = line.substr(line.find(':') + 2);
        break;
      }
    std::printf("{\"program\": \"deltatune\", \"cpu\": \"%s\", \"lines\": %zu, \"bytes\": %zu, \"encode_s\": %.4f, "
                "\"encode_mb_per_s\": %.2f, \"encode_with_offsets_s\": %.4f, \"encode_with_offsets_mb_per_s\": %.2f}\n",
                cpu.c_str(), lines.size(), bytes, plain, double(bytes) / 1e6 / plain, with_offsets,
                double(bytes) / 1e6 / with_offsets);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_speed: %s\n", e.what());
    return 1;
  }
  return 0;
}
