// The chunked gated delta rule on the GPU (ops/delta_rule_cuda.h): the plan, the order of the
// kernels, and their launch (or, for the tests, their emulation on the host).
//
// Design. flash-linear-attention's chunk_gated_delta_rule (the reference decomposition) runs 4
// kernels forward (cumsum, kkt+solve+w/u, state recurrence storing every chunk's state, output)
// and about 10 backward. Here:
//   forward   PrepBody<fwd>        parallel over (chunk, value head): Γ, A, T = (I + A)^-1 by
//                                  16×16 blocks, W, U, and the output's chunk-local parts
//                                  Q̃ = diag(a) Q − P W and O_local = P U
//             RecurrenceBody<fwd>  sequential over chunks, parallel over (sequence, value head,
//                                  state columns): V' = U − W S and O = O_local + Q̃ S (two
//                                  products side by side on different warps), then
//                                  S ← a_last S + Kᵀ diag(b) V'. The output is written on the
//                                  way: no per-chunk state is stored.
//   backward  PrepBody<bwd>        as above, plus T and Pᵀ dO (the part of dV' known up front)
//             RecurrenceBody<bwd>  recomputes and stores every chunk's entry state S and V',
//             + ReverseBody        and, in the same launch beside it (the two are independent),
//                                  sequential in reverse: dV' and the state gradient dS
//             ChunkGradBody        parallel: dq, dk, dv, dβ, dg of each (chunk, value head) in one
//                                  kernel (FLA: dv_local, dqkwg, wy_bwd, two adds, a cumsum)
//             ReduceHeadsBody      only when Hv > Hk: dq, dk summed over value heads
// 2 launches forward and 3 (4 with Hv > Hk) backward. Every matrix product runs on the tensor
// cores for bf16 (float accumulation; the parallel kernels' through block_mma.cuh's ldmatrix +
// mma.sync, with the head dim fixed at compile time where it is 128); float intermediates enter
// them as bf16 hi + lo pairs where bf16 alone cost accuracy (docs/design-notes.md, "CUDA"),
// inputs as they are. The recurrent state, Γ, the decays, A, T and every gradient accumulation
// stay float. For bf16 on the GPU the sequential kernels are RecurrenceMmaBody and ReverseMmaBody
// (delta_rule_recurrence_mma.cuh: the state in mma.sync registers across the whole sequence, the
// key dim split over two warps); the block_tile.cuh versions above (the state in shared memory)
// serve float, the host emulation, and head dims or arrays that 16-byte copies do not fit. Exponents are ≤ 0 everywhere: exp(Γ_i − Γ_j) with i ≥ j,
// exp(Γ_i), exp(Γ_last − Γ_i).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/gpu_profile.h"
#include "core/profile.h"
#include "ops/cuda/delta_rule_backward.cuh"
#include "ops/cuda/delta_rule_recurrence_mma.cuh"
#include "ops/delta_rule_cuda.h"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::Dims;
using cuda::kChunk;
using cuda::kThreads;
using cuda::Table;
using cuda::Workspace;

// One block per SM at most (every body takes over 100 KiB of shared memory): registers need not be
// left for a second one.
template <int Threads, class Body>
__global__ void __launch_bounds__(Threads, 1) run_blocks(Body body) {
  extern __shared__ __align__(128) char smem[];
  body(Block{int(threadIdx.x), int(blockDim.x)}, int(blockIdx.x), int(blockIdx.y), int(blockIdx.z),
       smem);
}

// Threads per block of a body: its own kThreads where it has one, else the family's.
template <class Body>
constexpr int block_threads() {
  if constexpr (requires { Body::kThreads; })
    return Body::kThreads;
  else
    return kThreads;
}

// Runs a kernel body over a grid: launched on the GPU, or emulated on the host (one thread per
// block, blocks spread over OpenMP threads: blocks of one launch never depend on each other).
struct Runner {
  bool emulate = false;
  cudaStream_t stream = nullptr;

  template <class Body>
  void operator()(const char* name, const Body& body, dim3 grid, size_t smem_bytes) const {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    if (emulate) {
      const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
#pragma omp parallel
      {
        std::vector<char> smem(smem_bytes + 128);
        char* base = smem.data() + (128 - reinterpret_cast<uintptr_t>(smem.data()) % 128) % 128;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < blocks; ++b)
          body(Block{0, 1}, int(b % grid.x), int(b / grid.x % grid.y), int(b / grid.x / grid.y),
               base);
      }
      return;
    }
    gpu<block_threads<Body>()>(name, body, grid, smem_bytes);
  }

  // The GPU launch alone, with Threads threads per block: the bodies that exist only on the GPU
  // (delta_rule_recurrence_mma.cuh) come here directly.
  template <int Threads, class Body>
  void gpu(const char* name, const Body& body, dim3 grid, size_t smem_bytes) const {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    static const int limit = [] {
      int device = 0, bytes = 0;
      DT_CUDA(cudaGetDevice(&device));
      DT_CUDA(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
      DT_CUDA(cudaFuncSetAttribute(run_blocks<Threads, Body>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
      return bytes;
    }();
    DT_CHECK(smem_bytes <= size_t(limit), name, ": needs ", smem_bytes,
             " bytes of shared memory per block, this GPU allows ", limit);
    // DELTATUNE_PROFILE=1: each kernel's GPU time (core/cuda/gpu_profile.h).
    const cuda::GpuProfileMark mark = cuda::gpu_profile_begin(stream);
    run_blocks<Threads, Body><<<grid, Threads, smem_bytes, stream>>>(body);
    DT_CUDA_LAUNCHED(name);
    cuda::gpu_profile_end(name, mark, stream);
  }
};

Dims make_dims(const DeltaRuleShape& shape, int64_t num_chunks, int64_t num_sequences) {
  Dims d;
  d.Hk = shape.num_k_heads;
  d.Hv = shape.num_v_heads;
  d.dk = shape.k_dim;
  d.dv = shape.v_dim;
  d.DK = cuda::round_up(d.dk, 16);
  d.DV = cuda::round_up(d.dv, 16);
  d.heads_per_key = d.Hv / d.Hk;
  d.tokens = shape.tokens;
  d.num_chunks = int(num_chunks);
  d.num_sequences = int(num_sequences);
  return d;
}

void check_cuda_arguments(const DeltaRuleShape& shape, std::span<const int64_t> cu_seqlens) {
  check_delta_rule_arguments(shape, cu_seqlens);
  DT_CHECK(shape.k_dim <= kDeltaRuleCudaMaxHeadDim && shape.v_dim <= kDeltaRuleCudaMaxHeadDim,
           "gated delta rule (CUDA): head dims up to ", kDeltaRuleCudaMaxHeadDim, ", got dk=",
           shape.k_dim, " dv=", shape.v_dim);
  DT_CHECK(shape.tokens < (int64_t(1) << 31) && shape.num_v_heads <= 65535,
           "gated delta rule (CUDA): at most 2^31 - 1 tokens and 65535 value heads per call");
}

// t0 [chunks] | len [chunks] | first chunk of each sequence [sequences + 1].
std::vector<int32_t> build_chunk_table(std::span<const int64_t> cu_seqlens, int chunk,
                                       int64_t* num_chunks) {
  std::vector<int32_t> t0, len, first;
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s) {
    first.push_back(int32_t(t0.size()));
    for (int64_t t = cu_seqlens[s]; t < cu_seqlens[s + 1]; t += chunk) {
      t0.push_back(int32_t(t));
      len.push_back(int32_t(std::min<int64_t>(chunk, cu_seqlens[s + 1] - t)));
    }
  }
  first.push_back(int32_t(t0.size()));
  *num_chunks = int64_t(t0.size());
  std::vector<int32_t> table = t0;
  table.insert(table.end(), len.begin(), len.end());
  table.insert(table.end(), first.begin(), first.end());
  return table;
}

Table table_of(const int32_t* table, int64_t num_chunks) {
  return {table, table + num_chunks, table + 2 * num_chunks};
}

// State columns per block of the sequential kernels: 16 gives twice the blocks of 32 (the
// sequential kernels have only sequences × Hv × DV/BV blocks to spread over the GPU).
int value_block(const Dims& d, int requested) {
  if (requested == 32 && d.DV % 32 == 0) return 32;
  return 16;
}

// Blocks of the register-state kernels (delta_rule_recurrence_mma.cuh): NW groups of KS warps,
// each group owning 16 state columns. KS = 2 by default: half the chain of dependent products per
// chunk. NW = 2 for the forward (two stages and the exchange fill 209 KB of shared memory); for
// the backward 4 (its forward and reverse blocks together stay within one wave of 132 SMs at 32
// value heads) or 2 where that still fits one wave (default_backward_warps). value_block 16, 32
// or 64 asks for NW = 1, 2 or 4; key_split for KS.
struct MmaShape {
  int warps, split;
};
// The backward's default: 4 column groups a block (NW = 4), unless its blocks at NW = 2 still fit
// one wave (one block per SM: their shared memory), as at 16 value heads of one sequence (128
// blocks): then 2, measured 5% faster there (docs/performance.md); at 32 value heads (256 blocks
// at NW = 2) NW = 4 is faster.
int default_backward_warps(const Dims& d) {
  static const int sms = [] {
    int device = 0, count = 0;
    DT_CUDA(cudaGetDevice(&device));
    DT_CUDA(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  }();
  const int64_t blocks_at_2 = 2 * int64_t(d.num_sequences) * d.Hv * ((d.DV + 31) / 32);
  return blocks_at_2 <= sms ? 2 : 4;
}

MmaShape mma_shape(const Dims& d, int requested_block, int requested_split, bool backward) {
  MmaShape m{requested_block == 16   ? 1
             : requested_block == 32 ? 2
             : requested_block == 64 ? 4
             : backward              ? default_backward_warps(d)
                                     : 2,
             requested_split == 1 ? 1 : 2};
  if (!backward && m.split == 2 && m.warps > 2) m.warps = 2;
  while (m.warps > 1 && 16 * m.warps > d.DV) m.warps /= 2;
  return m;
}
static_assert(cuda::MmaRecurrenceTiles::kDK == kDeltaRuleCudaMaxHeadDim,
              "the register-state kernels pad the key dim to the largest one allowed");

// The register-state kernels copy their tiles in whole 16-byte vectors (copy_fixed_tile_async):
// head dims that are multiples of 8 and 16-byte aligned arrays. Elsewhere the block_tile.cuh
// kernels run.
bool fixed_copies_fit(const Dims& d, std::initializer_list<const void*> arrays) {
  if (d.dk % 8 != 0 || d.dv % 8 != 0) return false;
  for (const void* p : arrays)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// Calls f(std::integral_constant<int, NW>{}, std::integral_constant<int, KS>{}).
template <class F>
void with_mma_shape(const MmaShape& m, F&& f) {
  auto split = [&](auto warps) {
    if (m.split == 1)
      f(warps, std::integral_constant<int, 1>{});
    else
      f(warps, std::integral_constant<int, 2>{});
  };
  if (m.warps == 1)
    split(std::integral_constant<int, 1>{});
  else if (m.warps == 2)
    split(std::integral_constant<int, 2>{});
  else
    split(std::integral_constant<int, 4>{});
}

// Calls f(std::integral_constant<int, kD>{}): the parallel kernels' head dim known at compile time,
// 128 where dk = dv = 128 (the models'), else 0 (sizes at run time; PrepBody says why).
template <class F>
void with_head_dim(const Dims& d, F&& f) {
  if (d.dk == 128 && d.dv == 128)
    f(std::integral_constant<int, 128>{});
  else
    f(std::integral_constant<int, 0>{});
}

template <class T>
void run_forward(const Runner& run, const Dims& d, const Table& tab, int requested_block,
                 int requested_split, const T* q, const T* k, const T* v, const float* g,
                 const float* beta, const float* initial_state, T* out, float* final_state,
                 char* workspace) {
  size_t bytes = 0;
  const Workspace<T> ws = cuda::carve_workspace<T>(d, kChunk<T>, false, workspace, &bytes);
  with_head_dim(d, [&](auto kd) {
    using Prep = cuda::PrepBody<T, false, decltype(kd)::value>;
    run("gated delta rule: chunk prep (forward)", Prep{d, tab, q, k, v, nullptr, g, beta, ws},
        dim3(d.num_chunks, d.Hv), Prep::smem_bytes(d));
  });
  // The sequential kernel: the state in registers for bf16 on the GPU (where its 16-byte copies
  // fit), block_tile.cuh's otherwise.
  if constexpr (std::is_same_v<T, cuda::bf16>) {
    if (!run.emulate && fixed_copies_fit(d, {k, workspace})) {
      with_mma_shape(mma_shape(d, requested_block, requested_split, false), [&](auto nw, auto ks) {
        constexpr int NW = decltype(nw)::value, KS = decltype(ks)::value;
        using Rec = cuda::RecurrenceMmaBody<NW, false, KS>;
        if constexpr (NW * KS <= 4) {  // the forward's shared memory allows 4 warps (mma_shape)
          run.template gpu<Rec::kThreads>(
              "gated delta rule: recurrence (forward)",
              Rec{d, tab, k, initial_state, out, final_state, ws},
              dim3(d.num_sequences, d.Hv, (d.DV + Rec::kCols - 1) / Rec::kCols), Rec::smem_bytes());
        }
      });
      return;
    }
  }
  auto recur = [&](auto bv_tag) {
    constexpr int BV = decltype(bv_tag)::value;
    using Rec = cuda::RecurrenceBody<T, BV, false>;
    run("gated delta rule: recurrence (forward)",
        Rec{d, tab, k, initial_state, out, final_state, ws}, dim3(d.num_sequences, d.Hv, d.DV / BV),
        Rec::smem_bytes(d));
  };
  if (value_block(d, requested_block) == 32)
    recur(std::integral_constant<int, 32>{});
  else
    recur(std::integral_constant<int, 16>{});
}

// The backward's two sequential passes, side by side in one launch.
template <class T>
void run_backward_recurrences(const Runner& run, const Dims& d, const Table& tab,
                              int requested_block, int requested_split, const T* q, const T* k,
                              const float* initial_state, const T* d_out,
                              const float* d_final_state, float* d_initial_state,
                              const Workspace<T>& ws) {
  const char* name = "gated delta rule: recurrences (forward recompute + reverse)";
  if constexpr (std::is_same_v<T, cuda::bf16>) {
    if (!run.emulate && fixed_copies_fit(d, {q, k, d_out, ws.gamma})) {
      with_mma_shape(mma_shape(d, requested_block, requested_split, true), [&](auto nw, auto ks) {
        constexpr int NW = decltype(nw)::value, KS = decltype(ks)::value;
        using Both = cuda::BothRecurrencesMmaBody<NW, KS>;
        const int blocks = (d.DV + 16 * NW - 1) / (16 * NW);
        const Both both{{d, tab, k, initial_state, nullptr, nullptr, ws},
                        {d, tab, q, k, d_out, d_final_state, d_initial_state, ws},
                        blocks};
        run.template gpu<Both::kThreads>(name, both, dim3(d.num_sequences, d.Hv, 2 * blocks),
                                         Both::smem_bytes());
      });
      return;
    }
  }
  auto sequential = [&](auto bv_tag) {
    constexpr int BV = decltype(bv_tag)::value;
    using Both = cuda::BothRecurrencesBody<T, BV>;
    const Both both{{d, tab, k, initial_state, nullptr, nullptr, ws},
                    {d, tab, q, k, d_out, d_final_state, d_initial_state, ws},
                    d.DV / BV};
    run(name, both, dim3(d.num_sequences, d.Hv, 2 * d.DV / BV), Both::smem_bytes(d));
  };
  if (value_block(d, requested_block) == 32)
    sequential(std::integral_constant<int, 32>{});
  else
    sequential(std::integral_constant<int, 16>{});
}

template <class T>
void run_backward(const Runner& run, const Dims& d, const Table& tab, int requested_block,
                  int requested_split, const T* q, const T* k, const T* v, const float* g,
                  const float* beta, const float* initial_state, const T* d_out,
                  const float* d_final_state, T* dq, T* dk, T* dv, float* dg, float* dbeta,
                  float* d_initial_state, char* workspace) {
  size_t bytes = 0;
  const Workspace<T> ws = cuda::carve_workspace<T>(d, kChunk<T>, true, workspace, &bytes);
  with_head_dim(d, [&](auto kd) {
    using Prep = cuda::PrepBody<T, true, decltype(kd)::value>;
    run("gated delta rule: chunk prep (backward)", Prep{d, tab, q, k, v, d_out, g, beta, ws},
        dim3(d.num_chunks, d.Hv), Prep::smem_bytes(d));
  });
  run_backward_recurrences<T>(run, d, tab, requested_block, requested_split, q, k, initial_state,
                              d_out, d_final_state, d_initial_state, ws);
  with_head_dim(d, [&](auto kd) {
    using Grad = cuda::ChunkGradBody<T, decltype(kd)::value>;
    run("gated delta rule: chunk gradients",
        Grad{d, tab, q, k, v, d_out, beta, dq, dk, dv, dg, dbeta, ws}, dim3(d.num_chunks, d.Hv),
        Grad::smem_bytes(d));
  });
  if (d.heads_per_key > 1) {
    auto reduce = [&](auto v) {
      using Reduce = cuda::ReduceHeadsBody<T, decltype(v)::value>;
      const int64_t total = d.tokens * d.Hk * d.dk;
      run("gated delta rule: dq, dk over value heads", Reduce{d, ws.dqk_heads, dq, dk},
          dim3(unsigned((total + Reduce::kPerBlock - 1) / Reduce::kPerBlock)), 0);
    };
    // The workspace's rows start 16-byte aligned when dk % 4 == 0 (carve_workspace aligns it).
    if (d.dk % 4 == 0)
      reduce(std::integral_constant<int, 4>{});
    else
      reduce(std::integral_constant<int, 1>{});
  }
}

template <class T>
void check_plan(const DeltaRuleCudaPlan& plan) {
  DT_CHECK(plan.chunk() == kChunk<T>, "gated delta rule (CUDA): plan made for chunks of ",
           plan.chunk(), " tokens, but this element type uses ", kChunk<T>);
}

}  // namespace

DeltaRuleCudaPlan::DeltaRuleCudaPlan(const DeltaRuleShape& shape,
                                     std::span<const int64_t> cu_seqlens, int chunk)
    : shape_(shape), chunk_(chunk), num_sequences_(int64_t(cu_seqlens.size()) - 1) {
  check_cuda_arguments(shape, cu_seqlens);
  DT_CHECK(chunk == kChunk<cuda::bf16> || chunk == kChunk<float>,
           "gated delta rule (CUDA): chunk must be delta_rule_cuda_chunk<T>(), got ", chunk);
  cuda::require_device();
  table_ = build_chunk_table(cu_seqlens, chunk, &num_chunks_);
  device_table_ = cuda::DeviceBuffer<int32_t>(table_);
}

size_t DeltaRuleCudaPlan::forward_workspace_bytes() const {
  size_t bytes = 0;
  const Dims d = make_dims(shape_, num_chunks_, num_sequences_);
  if (chunk_ == kChunk<float>)
    cuda::carve_workspace<float>(d, chunk_, false, nullptr, &bytes);
  else
    cuda::carve_workspace<cuda::bf16>(d, chunk_, false, nullptr, &bytes);
  return bytes;
}

size_t DeltaRuleCudaPlan::backward_workspace_bytes() const {
  size_t bytes = 0;
  const Dims d = make_dims(shape_, num_chunks_, num_sequences_);
  if (chunk_ == kChunk<float>)
    cuda::carve_workspace<float>(d, chunk_, true, nullptr, &bytes);
  else
    cuda::carve_workspace<cuda::bf16>(d, chunk_, true, nullptr, &bytes);
  return bytes;
}

template <class T>
void gated_delta_rule_cuda_forward(const DeltaRuleCudaPlan& plan, const T* q, const T* k,
                                   const T* v, const float* g, const float* beta,
                                   const float* initial_state, T* out, float* final_state,
                                   void* workspace, cudaStream_t stream) {
  check_plan<T>(plan);
  const Dims d = make_dims(plan.shape(), plan.num_chunks(), plan.num_sequences());
  run_forward<T>(Runner{false, stream}, d, table_of(plan.device_table(), plan.num_chunks()),
                 plan.value_block, plan.key_split, q, k, v, g, beta, initial_state, out,
                 final_state, static_cast<char*>(workspace));
}

template <class T>
void gated_delta_rule_cuda_backward(const DeltaRuleCudaPlan& plan, const T* q, const T* k,
                                    const T* v, const float* g, const float* beta,
                                    const float* initial_state, const T* d_out,
                                    const float* d_final_state, T* dq, T* dk, T* dv, float* dg,
                                    float* dbeta, float* d_initial_state, void* workspace,
                                    cudaStream_t stream) {
  check_plan<T>(plan);
  const Dims d = make_dims(plan.shape(), plan.num_chunks(), plan.num_sequences());
  run_backward<T>(Runner{false, stream}, d, table_of(plan.device_table(), plan.num_chunks()),
                  plan.value_block, plan.key_split, q, k, v, g, beta, initial_state, d_out,
                  d_final_state, dq, dk, dv, dg, dbeta, d_initial_state,
                  static_cast<char*>(workspace));
}

template <class T>
void gated_delta_rule_cuda_emulated_forward(const DeltaRuleShape& shape,
                                            std::span<const int64_t> cu_seqlens, const T* q,
                                            const T* k, const T* v, const float* g,
                                            const float* beta, const float* initial_state, T* out,
                                            float* final_state) {
  check_cuda_arguments(shape, cu_seqlens);
  int64_t num_chunks = 0;
  const auto table = build_chunk_table(cu_seqlens, kChunk<T>, &num_chunks);
  const Dims d = make_dims(shape, num_chunks, int64_t(cu_seqlens.size()) - 1);
  size_t bytes = 0;
  cuda::carve_workspace<T>(d, kChunk<T>, false, nullptr, &bytes);
  std::vector<char> workspace(bytes);
  run_forward<T>(Runner{true}, d, table_of(table.data(), num_chunks), 0, 0, q, k, v, g, beta,
                 initial_state, out, final_state, workspace.data());
}

template <class T>
void gated_delta_rule_cuda_emulated_backward(const DeltaRuleShape& shape,
                                             std::span<const int64_t> cu_seqlens, const T* q,
                                             const T* k, const T* v, const float* g,
                                             const float* beta, const float* initial_state,
                                             const T* d_out, const float* d_final_state, T* dq,
                                             T* dk, T* dv, float* dg, float* dbeta,
                                             float* d_initial_state) {
  check_cuda_arguments(shape, cu_seqlens);
  int64_t num_chunks = 0;
  const auto table = build_chunk_table(cu_seqlens, kChunk<T>, &num_chunks);
  const Dims d = make_dims(shape, num_chunks, int64_t(cu_seqlens.size()) - 1);
  size_t bytes = 0;
  cuda::carve_workspace<T>(d, kChunk<T>, true, nullptr, &bytes);
  std::vector<char> workspace(bytes);
  run_backward<T>(Runner{true}, d, table_of(table.data(), num_chunks), 0, 0, q, k, v, g, beta,
                  initial_state, d_out, d_final_state, dq, dk, dv, dg, dbeta, d_initial_state,
                  workspace.data());
}

#define DT_INSTANTIATE(T)                                                                       \
  template void gated_delta_rule_cuda_forward<T>(const DeltaRuleCudaPlan&, const T*, const T*,  \
                                                 const T*, const float*, const float*,          \
                                                 const float*, T*, float*, void*, cudaStream_t); \
  template void gated_delta_rule_cuda_backward<T>(                                             \
      const DeltaRuleCudaPlan&, const T*, const T*, const T*, const float*, const float*,       \
      const float*, const T*, const float*, T*, T*, T*, float*, float*, float*, void*,          \
      cudaStream_t);                                                                            \
  template void gated_delta_rule_cuda_emulated_forward<T>(                                      \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*,            \
      const float*, const float*, const float*, T*, float*);                                    \
  template void gated_delta_rule_cuda_emulated_backward<T>(                                     \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*,            \
      const float*, const float*, const float*, const T*, const float*, T*, T*, T*, float*,     \
      float*, float*);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
