// A plain tiled matrix product for kernels that need one with their own epilogue (the chunked loss):
//   C[M, N] = A[M, K] · op(B),  op(B) = B [K, N] row-major, or Bᵀ with B stored [N, K] (TransB)
// One block per 128 × 128 tile of C: slabs of 64 columns of A and rows of op(B) are copied to
// shared memory (zero-padded past the matrix edges), multiplied with block_matmul (tensor cores for
// bf16, float FMAs for float and on the host), and C stays in shared memory between slabs. At the
// end `epilogue(row, col, value)` sees every element of the tile inside C, consecutive threads on
// consecutive columns.
//
// Not tuned: no double buffering and C goes through shared memory between slabs, so it reaches a
// fraction of what cuBLAS does (docs/design-notes.md, "CUDA: the other ops"). Correct at any size.
#pragma once

#include <cstdint>

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
  static size_t shared_bytes() {
    size_t bytes = 0;
    carve(nullptr, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& blk, int bx, int by, int, char* shared) const {
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
    for (int e = blk.thread; e < BM * BN; e += blk.threads) {
      const int r = e / BN, c = e % BN;
      if (r < rows && c < cols) epilogue(m0 + r, n0 + c, K > 0 ? t.c[r * kLdC + c] : 0.0f);
    }
  }
};

}  // namespace deltatune::cuda
