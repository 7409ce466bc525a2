// A plain tiled matrix product for kernels that need one with their own epilogue (the chunked
// loss):
//   C[M, N] = A[M, K] · op(B),  op(B) = B [K, N] row-major, or Bᵀ with B stored [N, K] (TransB)
// One block (8 warps) per 128 × 128 tile of C, over slabs of 64 columns of A and rows of op(B)
// copied to shared memory (zero-padded past the matrix edges). At the end `epilogue(row, col,
// value)` sees every element of the tile inside C, consecutive threads on consecutive columns.
//   bf16 on the GPU: each warp keeps a 32 × 64 block of C in tensor-core accumulators across the
//     whole K loop, and the next slab's copy (cp.async) runs while the current one is multiplied.
//   float, and the host emulation: block_matmul slab by slab, C in shared memory between slabs.
// Not cuBLAS: no Hopper wgmma/TMA, one tile shape (docs/design-notes.md, "CUDA: the other ops").
#pragma once

#include <cstdint>
#include <type_traits>

#include "ops/cuda/block_tile.cuh"

namespace deltatune::cuda {

template <class T, bool TransB, class Epilogue>
struct TiledProductBody {
  static constexpr int BM = 128, BN = 128, BK = 64;
  static constexpr int kLdA = BK + kPad<T>;
  static constexpr int kLdB = TransB ? BK + kPad<T> : BN + kPad<T>;
  static constexpr int kRowsB = TransB ? BN : BK;
  static constexpr int kLdC = BN + 4;  // floats: a multiple of 4, as tensor-core stores require

  const T* a;
  int64_t lda;
  const T* b;
  int64_t ldb;
  int64_t M, N, K;
  Epilogue epilogue;

  static dim3 grid(int64_t M, int64_t N) {
    return dim3(unsigned((N + BN - 1) / BN), unsigned((M + BM - 1) / BM));
  }
  struct Tiles {
    T *a, *b;
    float* c;
  };
  DT_HD static Tiles carve(char* base, size_t* bytes) {
    SmemCarver s{base};
    Tiles t{s.template take<T>(BM * kLdA), s.template take<T>(kRowsB * kLdB),
            s.template take<float>(BM * kLdC)};
    *bytes = s.used;
    return t;
  }
  // Two stages of A and B tiles; after the K loop the C tile reuses them.
  static constexpr int kStageA = BM * kLdA, kStageB = kRowsB * kLdB;
  static constexpr size_t kPipelinedBytes = 2 * size_t(kStageA + kStageB) * sizeof(T);
  static_assert(kPipelinedBytes >= size_t(BM) * kLdC * sizeof(float), "C must fit the stages");

  static size_t shared_bytes() {
    size_t bytes = 0;
    carve(nullptr, &bytes);
    if constexpr (!std::is_same_v<T, bf16>) return bytes;
    return bytes > kPipelinedBytes ? bytes : kPipelinedBytes;
  }

  DT_HD void operator()(const Block& blk, int bx, int by, int, char* shared) const {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, bf16>) {
      pipelined(blk, bx, by, shared);
      return;
    }
#endif
    size_t bytes = 0;
    const Tiles t = carve(shared, &bytes);
    const int64_t m0 = int64_t(by) * BM, n0 = int64_t(bx) * BN;
    const int rows = int(M - m0 < BM ? M - m0 : BM), cols = int(N - n0 < BN ? N - n0 : BN);
    for (int64_t k0 = 0; k0 < K; k0 += BK) {
      const int depth = int(K - k0 < BK ? K - k0 : BK);
      blk.sync();  // the previous slab's product has read the tiles
      load_tile(blk, t.a, kLdA, BM, BK, a + m0 * lda + k0, lda, rows, depth);
      if constexpr (TransB)
        load_tile(blk, t.b, kLdB, BN, BK, b + n0 * ldb + k0, ldb, cols, depth);
      else
        load_tile(blk, t.b, kLdB, BK, BN, b + k0 * ldb + n0, ldb, depth, cols);
      blk.sync();
      block_matmul<false, TransB>(blk, BM, BN, BK, exact(t.a, kLdA), exact(t.b, kLdB), t.c, kLdC,
                                  k0 > 0);
    }
    blk.sync();
    write_tile(blk, t.c, m0, n0, rows, cols);
  }

  DT_HD void write_tile(const Block& blk, const float* c_tile, int64_t m0, int64_t n0, int rows,
                        int cols) const {
    for (int e = blk.thread; e < BM * BN; e += blk.threads) {
      const int r = e / BN, c = e % BN;
      if (r < rows && c < cols) epilogue(m0 + r, n0 + c, K > 0 ? c_tile[r * kLdC + c] : 0.0f);
    }
  }

#if defined(__CUDA_ARCH__)
  // Warp w owns rows 32 (w / 2) .. +32 and columns 64 (w % 2) .. +64 of the C tile: 2 × 4
  // accumulator fragments. Slab s is copied into stage s % 2 while slab s − 1 is multiplied.
  __device__ void pipelined(const Block& blk, int bx, int by, char* shared) const {
    using namespace nvcuda;
    using LayoutB = std::conditional_t<TransB, wmma::col_major, wmma::row_major>;
    static_assert(BM == 128 && BN == 128 && BK % 16 == 0, "the warp layout assumes 8 warps");
    T* stages = reinterpret_cast<T*>(shared);
    auto tile_a = [&](int s) { return stages + s * (kStageA + kStageB); };
    auto tile_b = [&](int s) { return stages + s * (kStageA + kStageB) + kStageA; };
    const int64_t m0 = int64_t(by) * BM, n0 = int64_t(bx) * BN;
    const int rows = int(M - m0 < BM ? M - m0 : BM), cols = int(N - n0 < BN ? N - n0 : BN);
    auto issue = [&](int s, int64_t k0) {
      const int depth = int(K - k0 < BK ? K - k0 : BK);
      copy_tile_async(blk, tile_a(s), kLdA, BM, BK, a + m0 * lda + k0, lda, rows, depth);
      if constexpr (TransB)
        copy_tile_async(blk, tile_b(s), kLdB, BN, BK, b + n0 * ldb + k0, ldb, cols, depth);
      else
        copy_tile_async(blk, tile_b(s), kLdB, BK, BN, b + k0 * ldb + n0, ldb, depth, cols);
      asm volatile("cp.async.commit_group;\n" ::: "memory");
    };
    const int warp = blk.thread / 32, wm = (warp / 2) * 32, wn = (warp % 2) * 64;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    const int64_t slabs = (K + BK - 1) / BK;
    if (slabs > 0) issue(0, 0);
    for (int64_t s = 0; s < slabs; ++s) {
      if (s + 1 < slabs) {
        issue(int((s + 1) % 2), (s + 1) * BK);
        asm volatile("cp.async.wait_group 1;\n" ::: "memory");
      } else {
        asm volatile("cp.async.wait_group 0;\n" ::: "memory");
      }
      blk.sync();  // slab s has landed for every thread
      const T* A = tile_a(int(s % 2));
      const T* B = tile_b(int(s % 2));
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LayoutB> fb[4];
#pragma unroll
        for (int i = 0; i < 2; ++i)
          wmma::load_matrix_sync(fa[i], A + (wm + 16 * i) * kLdA + kk, kLdA);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int col = wn + 16 * j;
          wmma::load_matrix_sync(fb[j], TransB ? B + col * kLdB + kk : B + kk * kLdB + col, kLdB);
        }
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      blk.sync();  // every warp has read stage s % 2 before slab s + 2 is copied into it
    }
    float* c_tile = reinterpret_cast<float*>(shared);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        wmma::store_matrix_sync(c_tile + (wm + 16 * i) * kLdC + wn + 16 * j, acc[i][j], kLdC,
                                wmma::mem_row_major);
    blk.sync();
    write_tile(blk, c_tile, m0, n0, rows, cols);
  }
#endif
};

}  // namespace deltatune::cuda
