// The llama.cpp side of scripts/bench_llama.sh: the build node-llama-cpp ships
// (scripts/fetch-llama.sh), timed exactly as bench/infer_bench.cpp times deltatune.
//
//   node bench/llama_bench.mjs NPM_PREFIX MODEL.gguf [--lora ADAPTER.gguf] [--prompt 512] [--gen 128]
//                              [--threads N]
//
// Prompt processing: one evaluation of `prompt` token ids (id_i = (i·7919 + 17) mod 150000) in a
// fresh context, batch size = prompt length, timed. Generation: `gen` tokens, greedy
// (temperature 0), starting from token 42 after the prompt: `gen` decodes of one token, timed.
// With --lora the adapter is applied at run time at scale 1. llama.cpp's own defaults otherwise
// (f16 K/V cache, flash attention "auto"). Prints one JSON line.
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [prefix, modelPath, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : fallback;
};
const lora = option("--lora", "");
const promptTokens = Number(option("--prompt", "512"));
const genTokens = Number(option("--gen", "128"));
const threads = Number(option("--threads", "2"));

const lib = path.join(prefix, "node_modules", "node-llama-cpp");
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(path.join(lib, "dist", "index.js")).href);

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
let t0 = process.hrtime.bigint();
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({
  contextSize: promptTokens + genTokens + 16,
  batchSize: promptTokens,
  sequences: 1,
  threads,
  ...(lora ? {lora: {adapters: [{filePath: lora, scale: 1}]}} : {}),
});
const loadS = seconds(t0);
const prompt = Array.from({length: promptTokens}, (_, i) => (i * 7919 + 17) % 150000);
const sequence = context.getSequence();

t0 = process.hrtime.bigint();
await sequence.evaluateWithoutGeneratingNewTokens(prompt);
const promptS = seconds(t0);

t0 = process.hrtime.bigint();
let generated = 0, last = -1;
for await (const token of sequence.evaluate([42], {temperature: 0})) {
  last = token;
  if (++generated >= genTokens) break;
}
const genS = seconds(t0);

console.log(JSON.stringify({
  engine: "llama.cpp",
  version: JSON.parse(fs.readFileSync(path.join(lib, "llama", "llama.cpp.info.json"), "utf8")).tag,
  model: modelPath, adapter: lora, threads, load_s: +loadS.toFixed(3),
  prompt_tokens: promptTokens, prompt_s: +promptS.toFixed(3), prompt_tok_s: +(promptTokens / promptS).toFixed(2),
  gen_tokens: generated, gen_s: +genS.toFixed(3), gen_tok_s: +(generated / genS).toFixed(2), last_token: last,
  peak_rss_GiB: +(process.resourceUsage().maxRSS / 1024 / 1024).toFixed(2),
  cpu: llama.systemInfo,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
