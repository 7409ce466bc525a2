// LoRA dropout masks without stored masks: element i of module m's input is kept when
// mix64(salt + i) < threshold, salt = mix64(seed ^ mix64(layer · 64 + kind + 1)), and a kept
// element is scaled by 1 / (1 − p) (PEFT's nn.Dropout). The backward and a checkpointed recompute
// regenerate exactly the forward's mask, and the CPU (lora/lora_linear.cpp) and the GPU
// (lora/cuda/lora_linear_cuda.cpp) draw the same one: this header is the one definition both use.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DT_DROPOUT_HD __host__ __device__
#else
#define DT_DROPOUT_HD
#endif

namespace deltatune {

// splitmix64's finaliser: a bijection of 64-bit values with good avalanche.
DT_DROPOUT_HD inline uint64_t dropout_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct DropoutMask {
  uint64_t salt = 0;
  uint64_t threshold = 0;  // kept when the hash is below: (1 − p) · 2^64
  float keep_scale = 1;    // 1 / (1 − p)

  // module_id: layer · 64 + LinearKind + 1.
  static DropoutMask make(uint64_t seed, uint64_t module_id, double p) {
    DropoutMask m;
    m.salt = dropout_mix64(seed ^ dropout_mix64(module_id));
    m.threshold = uint64_t((1.0 - p) * 18446744073709551616.0);
    m.keep_scale = float(1.0 / (1.0 - p));
    return m;
  }
  DT_DROPOUT_HD bool keeps(int64_t i) const { return dropout_mix64(salt + uint64_t(i)) < threshold; }
};

}  // namespace deltatune
