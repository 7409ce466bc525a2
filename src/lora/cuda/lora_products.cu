#include "lora/cuda/lora_products.h"

#include <algorithm>
#include <type_traits>

#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::bf16;
using cuda::copy_tile_async;
using cuda::from_float;
using cuda::kPad;
using cuda::SmemCarver;
using cuda::to_float;

constexpr int kThreads = 128;  // 4 warps
constexpr int kRankGroup = 64;  // the most rank columns one block holds (4 tiles of 16)

// cp.async groups (sm_80 and later). On the host copy_tile_async copies at once and these do
// nothing, so the pipelined loops below are also the emulation's plain loops.
DT_HD void commit_copies() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int Pending>
DT_HD void wait_copies() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

// Tiles of 16 rank columns in one block: r up to 64 in one group, larger r in groups of 64.
int rank_tiles(int64_t r) { return int(std::min<int64_t>(kRankGroup, (r + 15) / 16 * 16) / 16); }

template <class F>
void with_rank_tiles(int64_t r, F&& f) {
  switch (rank_tiles(r)) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: return f(std::integral_constant<int, 4>{});
  }
}

// down: out = alpha · x Fᵀ. A block owns BM rows and R rank columns and runs along k in slabs of
// BK, kStages slabs in flight. Warp w multiplies rows 16 (w % 2) .. +16 with half w / 2 of each
// slab's depth, its R columns in tensor-core accumulators over the whole k loop; the two halves
// meet in shared memory at the end (added in a fixed order).
template <int RT, bool FactorRK>
struct DownBody {
  static constexpr int BM = 32, BK = 128, kStages = 4, R = 16 * RT;
  static constexpr int kLdX = BK + kPad<bf16>;
  static constexpr int kRowsF = FactorRK ? R : BK;
  static constexpr int kLdF = FactorRK ? BK + kPad<bf16> : R + kPad<bf16>;
  static constexpr int kLdC = R + 4;
  static_assert(kThreads == 128 && BM == 32, "4 warps: 2 tiles of 16 rows times 2 halves of BK");

  const bf16* x;
  int64_t rows, k, ldx;
  const bf16* f;
  int64_t r;
  float alpha;
  bf16* out;

  struct Tiles {
    bf16* x[kStages];
    bf16* f[kStages];
    float* c;  // [2][BM][kLdC]: the two halves of the depth
  };
  DT_HD static Tiles carve(char* base, size_t* bytes) {
    SmemCarver s{base};
    Tiles t;
    for (int i = 0; i < kStages; ++i) {
      t.x[i] = s.template take<bf16>(BM * kLdX);
      t.f[i] = s.template take<bf16>(kRowsF * kLdF);
    }
    t.c = s.template take<float>(2 * BM * kLdC);
    *bytes = s.used;
    return t;
  }
  static size_t shared_bytes() {
    size_t bytes = 0;
    carve(nullptr, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& blk, int bx, int by, int, char* shared) const {
    size_t bytes = 0;
    const Tiles t = carve(shared, &bytes);
    const int64_t m0 = int64_t(bx) * BM, j0 = int64_t(by) * R;
    const int valid_rows = int(cuda::min_of(rows - m0, BM));
    const int valid_rank = int(cuda::min_of(r - j0, R));
    const int64_t slabs = (k + BK - 1) / BK;
    auto issue = [&](int64_t s) {
      if (s < slabs) {
        const int64_t k0 = s * BK;
        const int depth = int(cuda::min_of(k - k0, BK)), st = int(s % kStages);
        copy_tile_async(blk, t.x[st], kLdX, BM, BK, x + m0 * ldx + k0, ldx, valid_rows, depth);
        if constexpr (FactorRK)
          copy_tile_async(blk, t.f[st], kLdF, R, BK, f + j0 * k + k0, k, valid_rank, depth);
        else
          copy_tile_async(blk, t.f[st], kLdF, BK, R, f + k0 * r + j0, r, depth, valid_rank);
      }
      commit_copies();
    };
#if defined(__CUDA_ARCH__)
    using namespace nvcuda;
    using LayoutF = std::conditional_t<FactorRK, wmma::col_major, wmma::row_major>;
    const int warp = blk.thread / 32, rt = warp % 2, half = warp / 2;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[RT];
#pragma unroll
    for (int j = 0; j < RT; ++j) wmma::fill_fragment(acc[j], 0.0f);
#else
    for (int e = 0; e < 2 * BM * kLdC; ++e) t.c[e] = 0.0f;
#endif
    for (int s = 0; s < kStages - 1; ++s) issue(s);
    for (int64_t s = 0; s < slabs; ++s) {
      wait_copies<kStages - 2>();  // slab s has landed (this thread's copies)
      blk.sync();                  // everyone's copies, and everyone is done with slab s − 1
      issue(s + kStages - 1);      // into slab s − 1's stage
      const bf16* xs = t.x[s % kStages];
      const bf16* fs = t.f[s % kStages];
#if defined(__CUDA_ARCH__)
#pragma unroll
      for (int kk = 0; kk < BK / 2; kk += 16) {
        const int kc = half * (BK / 2) + kk;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
        wmma::load_matrix_sync(a, xs + rt * 16 * kLdX + kc, kLdX);
#pragma unroll
        for (int j = 0; j < RT; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LayoutF> b;
          wmma::load_matrix_sync(b, FactorRK ? fs + j * 16 * kLdF + kc : fs + kc * kLdF + j * 16,
                                 kLdF);
          wmma::mma_sync(acc[j], a, b, acc[j]);
        }
      }
#else
      for (int e = blk.thread; e < 2 * BM * R; e += blk.threads) {
        const int h = e / (BM * R), m = e / R % BM, j = e % R;
        float sum = 0.0f;
        for (int kc = h * (BK / 2); kc < (h + 1) * (BK / 2); ++kc)
          sum += to_float(xs[m * kLdX + kc]) *
                 to_float(FactorRK ? fs[j * kLdF + kc] : fs[kc * kLdF + j]);
        t.c[(h * BM + m) * kLdC + j] += sum;
      }
#endif
    }
#if defined(__CUDA_ARCH__)
#pragma unroll
    for (int j = 0; j < RT; ++j)
      wmma::store_matrix_sync(t.c + (half * BM + rt * 16) * kLdC + j * 16, acc[j], kLdC,
                              wmma::mem_row_major);
#endif
    blk.sync();
    for (int e = blk.thread; e < valid_rows * valid_rank; e += blk.threads) {
      const int m = e / valid_rank, j = e % valid_rank;
      const float sum = t.c[m * kLdC + j] + t.c[(BM + m) * kLdC + j];
      out[(m0 + m) * r + j0 + j] = from_float<bf16>(alpha * sum);
    }
  }
};

// up: y = alpha · u Gᵀ + beta · y. A block owns a BM × BN tile of y; the rank is its depth, taken
// in slabs of R; the tile meets y in one pass of 16-byte reads and writes.
template <int RT, bool FactorNR>
struct UpBody {
  static constexpr int BM = 64, BN = 128, R = 16 * RT;
  static constexpr int kLdU = R + kPad<bf16>;
  static constexpr int kRowsG = FactorNR ? BN : R;
  static constexpr int kLdG = FactorNR ? R + kPad<bf16> : BN + kPad<bf16>;
  static constexpr int kLdC = BN + 4;

  const bf16* u;
  int64_t rows, r;
  const bf16* g;
  int64_t n;
  float alpha, beta;
  bf16* y;
  int64_t ldy;

  struct Tiles {
    bf16 *u, *g;
    float* c;
  };
  DT_HD static Tiles carve(char* base, size_t* bytes) {
    SmemCarver s{base};
    Tiles t{s.template take<bf16>(BM * kLdU), s.template take<bf16>(kRowsG * kLdG),
            s.template take<float>(BM * kLdC)};
    *bytes = s.used;
    return t;
  }
  static size_t shared_bytes() {
    size_t bytes = 0;
    carve(nullptr, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& blk, int bx, int by, int, char* shared) const {
    size_t bytes = 0;
    const Tiles t = carve(shared, &bytes);
    const int64_t m0 = int64_t(by) * BM, n0 = int64_t(bx) * BN;
    const int valid_rows = int(cuda::min_of(rows - m0, BM));
    const int valid_cols = int(cuda::min_of(n - n0, BN));
    for (int64_t j0 = 0; j0 < r; j0 += R) {
      const int depth = int(cuda::min_of(r - j0, R));
      if (j0 > 0) blk.sync();  // the previous slab's product has read the tiles
      copy_tile_async(blk, t.u, kLdU, BM, R, u + m0 * r + j0, r, valid_rows, depth);
      if constexpr (FactorNR)
        copy_tile_async(blk, t.g, kLdG, BN, R, g + n0 * r + j0, r, valid_cols, depth);
      else
        copy_tile_async(blk, t.g, kLdG, R, BN, g + j0 * n + n0, n, depth, valid_cols);
      cuda::async_wait();
      blk.sync();
      cuda::block_matmul<false, FactorNR>(blk, BM, BN, (depth + 15) / 16 * 16,
                                          cuda::exact<bf16>(t.u, kLdU),
                                          cuda::exact<bf16>(t.g, kLdG), t.c, kLdC, j0 > 0);
    }
    blk.sync();
    constexpr int V = 8;  // bf16 in 16 bytes
    for (int e = blk.thread; e < BM * (BN / V); e += blk.threads) {
      const int m = e / (BN / V), c0 = e % (BN / V) * V;
      if (m >= valid_rows || c0 >= valid_cols) continue;
      const float* sum = t.c + m * kLdC + c0;
      bf16* dst = y + (m0 + m) * ldy + n0 + c0;
#if defined(__CUDA_ARCH__)
      if (c0 + V <= valid_cols && (reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
        uint4 old = make_uint4(0, 0, 0, 0), result;
        if (beta != 0.0f) old = *reinterpret_cast<const uint4*>(dst);
        const bf16* o = reinterpret_cast<const bf16*>(&old);
        bf16* w = reinterpret_cast<bf16*>(&result);
#pragma unroll
        for (int i = 0; i < V; ++i)
          w[i] = from_float<bf16>(alpha * sum[i] + (beta != 0.0f ? beta * to_float(o[i]) : 0.0f));
        *reinterpret_cast<uint4*>(dst) = result;
        continue;
      }
#endif
      for (int i = 0; i < V && c0 + i < valid_cols; ++i)
        dst[i] =
            from_float<bf16>(alpha * sum[i] + (beta != 0.0f ? beta * to_float(dst[i]) : 0.0f));
    }
  }
};

// grad: P = alpha · dᵀ u over one chunk of rows, for BN columns of d and R rank columns. The chunk
// runs in slabs of BT rows, kStages in flight; warp w holds rows 32 w .. +32 of P (columns of d)
// in tensor-core accumulators over the whole chunk. P is added to grad, or written as the chunk's
// partial sum (partials[chunk], grad's layout) when there are several chunks.
template <int RT, bool GradNR>
struct GradBody {
  static constexpr int BT = 64, BN = 128, kStages = 3, R = 16 * RT;
  static constexpr int kLdD = BN + kPad<bf16>;
  static constexpr int kLdU = R + kPad<bf16>;
  static constexpr int kLdC = R + 4;
  static_assert(kThreads == 128 && BN == 4 * 2 * 16, "4 warps of 2 tiles of 16 columns of d");

  const bf16* d;
  int64_t rows, n, ldd;
  const bf16* u;
  int64_t r;
  float alpha;
  int64_t chunk_rows;
  float* out;
  bool partial;

  struct Tiles {
    bf16* d[kStages];
    bf16* u[kStages];
    float* c;  // [BN][kLdC]
  };
  DT_HD static Tiles carve(char* base, size_t* bytes) {
    SmemCarver s{base};
    Tiles t;
    for (int i = 0; i < kStages; ++i) {
      t.d[i] = s.template take<bf16>(BT * kLdD);
      t.u[i] = s.template take<bf16>(BT * kLdU);
    }
    t.c = s.template take<float>(BN * kLdC);
    *bytes = s.used;
    return t;
  }
  static size_t shared_bytes() {
    size_t bytes = 0;
    carve(nullptr, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& blk, int bx, int chunk, int group, char* shared) const {
    size_t bytes = 0;
    const Tiles t = carve(shared, &bytes);
    const int64_t n0 = int64_t(bx) * BN, j0 = int64_t(group) * R;
    const int64_t t0 = int64_t(chunk) * chunk_rows, t1 = cuda::min_of(rows, t0 + chunk_rows);
    const int valid_cols = int(cuda::min_of(n - n0, BN));
    const int valid_rank = int(cuda::min_of(r - j0, R));
    const int64_t slabs = (t1 - t0 + BT - 1) / BT;
    auto issue = [&](int64_t s) {
      if (s < slabs) {
        const int64_t ts = t0 + s * BT;
        const int depth = int(cuda::min_of(t1 - ts, BT)), st = int(s % kStages);
        copy_tile_async(blk, t.d[st], kLdD, BT, BN, d + ts * ldd + n0, ldd, depth, valid_cols);
        copy_tile_async(blk, t.u[st], kLdU, BT, R, u + ts * r + j0, r, depth, valid_rank);
      }
      commit_copies();
    };
#if defined(__CUDA_ARCH__)
    using namespace nvcuda;
    const int warp = blk.thread / 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][RT];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < RT; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
#else
    for (int e = 0; e < BN * kLdC; ++e) t.c[e] = 0.0f;
#endif
    for (int s = 0; s < kStages - 1; ++s) issue(s);
    for (int64_t s = 0; s < slabs; ++s) {
      wait_copies<kStages - 2>();
      blk.sync();
      issue(s + kStages - 1);
      const bf16* ds = t.d[s % kStages];
      const bf16* us = t.u[s % kStages];
#if defined(__CUDA_ARCH__)
#pragma unroll
      for (int kk = 0; kk < BT; kk += 16) {
        // P's rows are d's columns: the a operand is dᵀ, read column-major from d's tile.
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> a[2];
#pragma unroll
        for (int i = 0; i < 2; ++i)
          wmma::load_matrix_sync(a[i], ds + kk * kLdD + (2 * warp + i) * 16, kLdD);
#pragma unroll
        for (int j = 0; j < RT; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> b;
          wmma::load_matrix_sync(b, us + kk * kLdU + j * 16, kLdU);
#pragma unroll
          for (int i = 0; i < 2; ++i) wmma::mma_sync(acc[i][j], a[i], b, acc[i][j]);
        }
      }
#else
      for (int e = blk.thread; e < BN * R; e += blk.threads) {
        const int c = e / R, j = e % R;
        float sum = 0.0f;
        for (int tt = 0; tt < BT; ++tt) sum += to_float(ds[tt * kLdD + c]) * to_float(us[tt * kLdU + j]);
        t.c[c * kLdC + j] += sum;
      }
#endif
    }
#if defined(__CUDA_ARCH__)
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < RT; ++j)
        wmma::store_matrix_sync(t.c + (2 * warp + i) * 16 * kLdC + j * 16, acc[i][j], kLdC,
                                wmma::mem_row_major);
#endif
    blk.sync();
    float* dst = partial ? out + int64_t(chunk) * n * r : out;
    // Consecutive threads on consecutive addresses of grad's layout.
    for (int e = blk.thread; e < valid_cols * valid_rank; e += blk.threads) {
      const int c = GradNR ? e / valid_rank : e % valid_cols;
      const int j = GradNR ? e % valid_rank : e / valid_cols;
      const int64_t at = GradNR ? (n0 + c) * r + j0 + j : (j0 + j) * n + n0 + c;
      const float v = alpha * t.c[c * kLdC + j];
      if (partial)
        dst[at] = v;
      else
        dst[at] += v;
    }
  }
};

// Rows of a gradient's chunks: enough chunks that about kTargetBlocks blocks run (the GPU has
// 132 SMs), at most kMaxChunks (the partial sums are read again), at least 2 slabs each.
constexpr int64_t kTargetBlocks = 264, kMaxChunks = 16;
int64_t grad_chunk_rows(int64_t rows, int64_t n) {
  constexpr int64_t BT = GradBody<1, true>::BT, BN = GradBody<1, true>::BN;
  const int64_t tiles = (n + BN - 1) / BN, slabs = (rows + BT - 1) / BT;
  int64_t chunks = std::clamp<int64_t>((kTargetBlocks + tiles - 1) / tiles, 1, kMaxChunks);
  chunks = std::max<int64_t>(1, std::min(chunks, slabs / 2));
  return (slabs + chunks - 1) / chunks * BT;
}
int64_t grad_chunks(int64_t rows, int64_t n) {
  const int64_t chunk_rows = grad_chunk_rows(rows, n);
  return (rows + chunk_rows - 1) / chunk_rows;
}

}  // namespace

void lora_down_cuda(const bf16* x, int64_t rows, int64_t k, int64_t ldx, const bf16* factor,
                    bool factor_rk, int64_t r, float alpha, bf16* out, cuda::Target target) {
  if (rows == 0 || r == 0) return;
  with_rank_tiles(r, [&](auto rt) {
    constexpr int RT = decltype(rt)::value;
    auto run = [&](auto body) {
      using Body = decltype(body);
      const dim3 grid(cuda::blocks_for(rows, Body::BM).x,
                      unsigned((r + Body::R - 1) / Body::R));
      cuda::launch<kThreads>(target, "LoRA down product (u, du)", body, grid,
                             Body::shared_bytes());
    };
    if (factor_rk)
      run(DownBody<RT, true>{x, rows, k, ldx, factor, r, alpha, out});
    else
      run(DownBody<RT, false>{x, rows, k, ldx, factor, r, alpha, out});
  });
}

void lora_up_cuda(const bf16* u, int64_t rows, int64_t r, const bf16* factor, bool factor_nr,
                  int64_t n, float alpha, float beta, bf16* y, int64_t ldy, cuda::Target target) {
  if (rows == 0 || n == 0) return;
  DT_CHECK(r > 0, "lora_up_cuda: rank 0");
  with_rank_tiles(r, [&](auto rt) {
    constexpr int RT = decltype(rt)::value;
    auto run = [&](auto body) {
      using Body = decltype(body);
      const dim3 grid(unsigned((n + Body::BN - 1) / Body::BN), cuda::blocks_for(rows, Body::BM).x);
      DT_CHECK(grid.y < 65536u, "lora_up_cuda: ", rows, " rows are too many for one launch");
      cuda::launch<kThreads>(target, "LoRA up product (y, dx)", body, grid, Body::shared_bytes());
    };
    if (factor_nr)
      run(UpBody<RT, true>{u, rows, r, factor, n, alpha, beta, y, ldy});
    else
      run(UpBody<RT, false>{u, rows, r, factor, n, alpha, beta, y, ldy});
  });
}

size_t lora_grad_workspace_bytes(int64_t rows, int64_t n, int64_t r) {
  const int64_t chunks = rows > 0 ? grad_chunks(rows, n) : 1;
  return chunks > 1 ? size_t(chunks * n * r) * sizeof(float) : 0;
}

void lora_grad_cuda(const bf16* d, int64_t rows, int64_t n, int64_t ldd, const bf16* u, int64_t r,
                    float alpha, float* grad, bool grad_nr, float* workspace,
                    cuda::Target target) {
  if (rows == 0 || n == 0 || r == 0) return;
  const int64_t chunk_rows = grad_chunk_rows(rows, n), chunks = grad_chunks(rows, n);
  const bool partial = chunks > 1;
  DT_CHECK(!partial || workspace, "lora_grad_cuda: needs a workspace");
  with_rank_tiles(r, [&](auto rt) {
    constexpr int RT = decltype(rt)::value;
    auto run = [&](auto body) {
      using Body = decltype(body);
      const dim3 grid(unsigned((n + Body::BN - 1) / Body::BN), unsigned(chunks),
                      unsigned((r + Body::R - 1) / Body::R));
      cuda::launch<kThreads>(target, "LoRA factor gradient (dA, dB)", body, grid,
                             Body::shared_bytes());
    };
    float* out = partial ? workspace : grad;
    if (grad_nr)
      run(GradBody<RT, true>{d, rows, n, ldd, u, r, alpha, chunk_rows, out, partial});
    else
      run(GradBody<RT, false>{d, rows, n, ldd, u, r, alpha, chunk_rows, out, partial});
  });
  if (partial)
    cuda::sum_partials(target, "LoRA factor gradient (chunk sums)", workspace, chunks, n * r,
                       grad);
}

}  // namespace deltatune
