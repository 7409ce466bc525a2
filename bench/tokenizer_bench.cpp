// Tokenizer speed on one thread: encode (and encode_with_offsets) of the corpus lines repeated to
// 10 MB, one call per line, as scripts/make_tokenizer_fixtures.py times tokenizers; and the split
// step alone, hand-written Qwen matcher against PCRE2 running the same expression. Needs the real
// tokenizer (scripts/fetch-tokenizer.sh); DELTATUNE_TOKENIZER_JSON overrides its place.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "tokenizer_text.h"
#include "text/pretokenizer.h"
#include "text/qwen_split.h"
#include "text/tokenizer.h"

namespace deltatune {
namespace {

struct Text {
  std::vector<std::string> lines;
  size_t bytes = 0;
};

const Text& text() {
  static const Text t = [] {
    Text t;
    t.lines = tokenizer_bench_lines(DELTATUNE_SOURCE_DIR "/tests/fixtures/tokenizer/corpus.jsonl", 10.0, &t.bytes);
    return t;
  }();
  return t;
}

const Tokenizer& qwen3() {
  static const Tokenizer t = Tokenizer::load(std::getenv("DELTATUNE_TOKENIZER_JSON")
                                                 ? std::getenv("DELTATUNE_TOKENIZER_JSON")
                                                 : DELTATUNE_SOURCE_DIR "/.cache/npm/tokenizer-qwen3/tokenizer.json");
  return t;
}

void encode(benchmark::State& state) {
  const bool offsets = state.range(0);
  const Tokenizer& t = qwen3();
  const Text& x = text();
  std::vector<std::pair<size_t, size_t>> spans;
  size_t tokens = 0;
  for (auto _ : state)
    for (const auto& line : x.lines)
      tokens += (offsets ? t.encode_with_offsets(line, &spans) : t.encode(line)).size();
  state.SetBytesProcessed(int64_t(state.iterations() * x.bytes));
  state.counters["tokens"] = double(tokens) / double(state.iterations());
}
BENCHMARK(encode)->ArgName("offsets")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void split(benchmark::State& state) {
  const SplitPattern pattern(kQwenSplitRegex, state.range(0) ? SplitPattern::Engine::Pcre2 : SplitPattern::Engine::Fastest);
  const Text& x = text();
  std::vector<std::pair<size_t, size_t>> pieces;
  for (auto _ : state)
    for (const auto& line : x.lines) {
      pieces.clear();
      pattern.split(line, pieces);
      benchmark::DoNotOptimize(pieces.data());
    }
  state.SetBytesProcessed(int64_t(state.iterations() * x.bytes));
  state.SetLabel(state.range(0) ? "PCRE2 (JIT)" : "hand-written");
}
BENCHMARK(split)->ArgName("pcre2")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace deltatune

BENCHMARK_MAIN();
