// Runs llama.cpp (the build node-llama-cpp ships, scripts/fetch-llama.sh) on GGUF models and writes
// the logits of every position: the "other implementation" of the llama.cpp interop tests.
//
//   node tests/llamacpp/llama_logits.mjs NPM_PREFIX JOB.json
//
// JOB.json: {"vocab": 256, "threads": 1,
//            "models": [{"path": "m.gguf",
//                        "runs": [{"tokens": [1, 2, 3], "out": "base.f32",
//                                  "lora": [{"path": "a.gguf", "scale": 1.0}]}],  // lora optional
//                        "tokenize": ["text", ...]}]}                           // optional
// Each run evaluates its tokens as one sequence in a fresh context (with its adapters, if any; the
// model keeps adapters loaded between contexts) and writes the raw logits float32 [tokens, vocab]
// (little-endian) to `out`. Prints one JSON line:
//   {"llama_cpp": tag, "models": [{"tokenize": [[ids...], ...], "chat_template": "..."}]}.
//
// Logits come from LlamaContextSequence.controlledEvaluate with generateNext.logits: the full
// llama_get_logits_ith row, returned before any sampling (the default sampler is greedy and does
// not change logits: node-llama-cpp llama/addon/AddonContext.cpp SampleToken).
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [prefix, jobPath] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));
const lib = path.join(prefix, "node_modules", "node-llama-cpp");
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(path.join(lib, "dist", "index.js")).href);
const info = JSON.parse(fs.readFileSync(path.join(lib, "llama", "llama.cpp.info.json"), "utf8"));

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const vocab = job.vocab;
const results = [];

for (const spec of job.models) {
  const model = await llama.loadModel({modelPath: spec.path, gpuLayers: 0});
  for (const run of spec.runs ?? []) {
    const n = run.tokens.length;
    const context = await model.createContext({
      contextSize: Math.max(64, n + 1),
      batchSize: Math.max(64, n),
      sequences: 1,
      // One thread: these models are tiny, and ggml's spinning thread pool slows to a crawl on a
      // busy 2-core machine (360 ms instead of 8 ms for 12 tokens).
      threads: job.threads ?? 1,
      // llama.cpp keeps K and V in f16 by default; f32 caches and no flash attention leave only
      // float32 rounding between its logits and an exact computation.
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      flashAttention: false,
      ...(run.lora ? {lora: {adapters: run.lora.map((a) => ({filePath: a.path, scale: a.scale ?? 1}))}} : {}),
    });
    const outputs = await context.getSequence().controlledEvaluate(
        run.tokens.map((t) => [t, {generateNext: {logits: true}}]));
    const logits = new Float32Array(n * vocab);
    for (let i = 0; i < n; ++i) {
      const next = outputs[i]?.next?.logits;
      if (!next || next.size !== vocab) throw new Error(`${spec.path} position ${i}: ${next?.size} logits, not ${vocab}`);
      for (const [token, value] of next) logits[i * vocab + token] = value;
    }
    fs.writeFileSync(run.out, Buffer.from(logits.buffer));
    await context.dispose();
  }
  results.push({
    tokenize: (spec.tokenize ?? []).map((text) => Array.from(model.tokenize(text, true))),
    chat_template: model.fileInfo.metadata?.tokenizer?.chat_template ?? null,
  });
  await model.dispose();
}

console.log(JSON.stringify({llama_cpp: info.tag, models: results}));
await llama.dispose();
