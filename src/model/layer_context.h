// What every layer function of one pass shares: the config, the adapter, which layer this is, the
// packed batch's shape, and the arena its buffers come from.
#pragma once

#include <cstdint>
#include <span>

#include "core/arena.h"
#include "lora/lora_linear.h"
#include "model/config.h"

namespace deltatune {

struct LayerContext {
  const ModelConfig& config;
  const LoraRun& lora;
  int layer;
  int64_t tokens;
  std::span<const int64_t> cu_seqlens;
  Arena& arena;

  template <class T>
  T* alloc(int64_t n) const {
    return arena.alloc<T>(size_t(n));
  }
};

}  // namespace deltatune
