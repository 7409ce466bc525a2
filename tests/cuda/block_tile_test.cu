// The tensor-core tile product (src/ops/cuda/block_tile.cuh) on the GPU, for every combination of
// transposed operands and split (hi + lo) operands, against a float64 product on the host of the
// very bf16 values it was given. Its host emulation is a plain loop; this is the one place the
// wmma fragments' layouts are checked on their own. Also the fixed-shape asynchronous tile copy
// (copy_fixed_tile_async) against the tile it should leave: values, zeros past the valid rows and
// columns, the padding untouched.
//
// Tolerance: 1e-5 of the largest |element| of C. The products of bf16 values are exact in float;
// only float accumulation rounds (eps 6e-8 over sums of 80 terms of mixed sign).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/cuda/device_buffer.h"
#include "cuda/require_gpu.h"
#include "core/rng.h"
#include "ops/cuda/block_mma.cuh"
#include "test_util.h"

namespace deltatune {
namespace {

using cuda::bf16;
using cuda::Block;

constexpr double kTolerance = 1e-5;

// One block: copies A [rows_a × lda] and B [rows_b × ldb] (hi and lo planes) into shared memory,
// multiplies, writes C [M × N] back. C starts as `C` (accumulate) so that path is checked too.
// Mma: block_mma.cuh's block_product (ldmatrix + mma.sync) instead of block_matmul (wmma).
template <bool TransA, bool TransB, bool Mma>
__global__ void product_kernel(int M, int N, int K, const bf16* a, int rows_a, int lda,
                               const bf16* b, int rows_b, int ldb, bool split_a, bool split_b,
                               float* c, bool accumulate) {
  extern __shared__ __align__(128) char smem[];
  const Block blk{int(threadIdx.x), int(blockDim.x)};
  bf16* sa = reinterpret_cast<bf16*>(smem);
  bf16* sb = sa + 2 * rows_a * lda;
  float* sc = reinterpret_cast<float*>(sb + 2 * rows_b * ldb);
  for (int e = blk.thread; e < 2 * rows_a * lda; e += blk.threads) sa[e] = a[e];
  for (int e = blk.thread; e < 2 * rows_b * ldb; e += blk.threads) sb[e] = b[e];
  for (int e = blk.thread; e < M * N; e += blk.threads) sc[e] = c[e];
  blk.sync();
  const cuda::Operand<bf16> A = cuda::split(sa, split_a ? sa + rows_a * lda : nullptr, lda);
  const cuda::Operand<bf16> B = cuda::split(sb, split_b ? sb + rows_b * ldb : nullptr, ldb);
  if constexpr (Mma)
    cuda::block_product<TransA, TransB>(blk, M, N, K, A, B, sc, N, accumulate);
  else
    cuda::block_matmul<TransA, TransB>(blk, M, N, K, A, B, sc, N, accumulate);
  blk.sync();
  for (int e = blk.thread; e < M * N; e += blk.threads) c[e] = sc[e];
}

// Random values split into bf16 hi and lo planes: [hi (rows × ld) | lo (rows × ld)].
std::vector<bf16> random_split(int rows, int ld, Rng& rng) {
  std::vector<bf16> x(size_t(2 * rows * ld));
  for (int e = 0; e < rows * ld; ++e) {
    const float v = float(rng.normal());
    x[size_t(e)] = __float2bfloat16(v);
    x[size_t(rows * ld + e)] = __float2bfloat16(v - __bfloat162float(x[size_t(e)]));
  }
  return x;
}

template <bool TransA, bool TransB, bool Mma>
void check_product(bool split_a, bool split_b, bool accumulate, double& worst) {
  const int M = 64, N = 48, K = 80;
  const int rows_a = TransA ? K : M, lda = (TransA ? M : K) + 8;
  const int rows_b = TransB ? N : K, ldb = (TransB ? K : N) + 8;
  Rng rng(uint64_t(TransA) * 8 + TransB * 4 + split_a * 2 + split_b + 16 * accumulate);
  const auto a = random_split(rows_a, lda, rng), b = random_split(rows_b, ldb, rng);
  std::vector<float> c0(size_t(M * N));
  for (auto& x : c0) x = float(rng.normal());
  auto value = [](const std::vector<bf16>& x, int rows, int ld, int at, bool lo) {
    return double(__bfloat162float(x[size_t(at)])) +
           (lo ? double(__bfloat162float(x[size_t(rows * ld + at)])) : 0.0);
  };
  std::vector<double> want(size_t(M * N));
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = accumulate ? c0[size_t(m * N + n)] : 0.0;
      for (int k = 0; k < K; ++k)
        s += value(a, rows_a, lda, TransA ? k * lda + m : m * lda + k, split_a) *
             value(b, rows_b, ldb, TransB ? n * ldb + k : k * ldb + n, split_b);
      want[size_t(m * N + n)] = s;
    }
  cuda::DeviceBuffer<bf16> da(a), db(b);
  cuda::DeviceBuffer<float> dc(c0);
  const size_t smem = (a.size() + b.size()) * sizeof(bf16) + size_t(M * N) * sizeof(float) + 128;
  DT_CUDA(cudaFuncSetAttribute(product_kernel<TransA, TransB, Mma>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  product_kernel<TransA, TransB, Mma><<<1, 256, smem>>>(M, N, K, da.data(), rows_a, lda, db.data(),
                                                    rows_b, ldb, split_a, split_b, dc.data(),
                                                    accumulate);
  DT_CUDA(cudaGetLastError());
  DT_CUDA(cudaDeviceSynchronize());
  const auto got = dc.download();
  const auto e = testing_util::relative_error(got.data(), want.data(), want.size());
  worst = std::max(worst, e.value);
  EXPECT_LE(e.value, kTolerance) << "Mma=" << Mma << " TransA=" << TransA << " TransB=" << TransB
                                 << " split_a=" << split_a << " split_b=" << split_b
                                 << " accumulate=" << accumulate << ": "
                                 << testing_util::describe(e);
}

TEST(CudaBlockTile, ProductsMatchFloat64) {
  DT_REQUIRE_GPU();
  double worst = 0;
  for (bool split_a : {false, true})
    for (bool split_b : {false, true})
      for (bool accumulate : {false, true}) {
        check_product<false, false, false>(split_a, split_b, accumulate, worst);
        check_product<false, true, false>(split_a, split_b, accumulate, worst);
        check_product<true, false, false>(split_a, split_b, accumulate, worst);
        check_product<true, true, false>(split_a, split_b, accumulate, worst);
        check_product<false, false, true>(split_a, split_b, accumulate, worst);
        check_product<false, true, true>(split_a, split_b, accumulate, worst);
        check_product<true, false, true>(split_a, split_b, accumulate, worst);
        check_product<true, true, true>(split_a, split_b, accumulate, worst);
      }
  testing_util::report("tile product (wmma and mma.sync bf16, float accumulation) vs float64",
                       worst);
}

// One block copies a tile with copy_fixed_tile_async into shared memory filled with a sentinel,
// then writes the whole padded tile (R × LD) back.
template <int R, int Cn, int LD, int Threads, class T>
__global__ void fixed_copy_kernel(const T* src, int64_t stride, int rows, int cols, T sentinel,
                                  T* out) {
  extern __shared__ __align__(128) char smem[];
  T* tile = reinterpret_cast<T*>(smem);
  const Block blk{int(threadIdx.x), int(blockDim.x)};
  for (int e = blk.thread; e < R * LD; e += blk.threads) tile[e] = sentinel;
  blk.sync();
  cuda::copy_fixed_tile_async<R, Cn, LD, Threads>(blk, tile, src, stride, rows, cols);
  cuda::async_commit();
  cuda::async_wait();
  blk.sync();
  for (int e = blk.thread; e < R * LD; e += blk.threads) out[e] = tile[e];
}

template <int R, int Cn, int LD, int Threads, class T>
void check_fixed_copy(int rows, int cols, int64_t stride) {
  std::vector<T> src(size_t(R * stride));
  for (size_t i = 0; i < src.size(); ++i) src[i] = T(float(i % 1000) + 1.0f);
  const T sentinel = T(-7.0f);
  cuda::DeviceBuffer<T> dsrc(src), dout(size_t(R * LD));
  const size_t smem = size_t(R * LD) * sizeof(T);
  fixed_copy_kernel<R, Cn, LD, Threads, T><<<1, Threads, smem>>>(dsrc.data(), stride, rows, cols,
                                                                 sentinel, dout.data());
  DT_CUDA(cudaGetLastError());
  DT_CUDA(cudaDeviceSynchronize());
  const auto got = dout.download();
  int wrong = 0;
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < LD; ++c) {
      const float want = c >= Cn                 ? float(sentinel)
                         : r < rows && c < cols ? float(src[size_t(r * stride + c)])
                                                 : 0.0f;
      if (float(got[size_t(r * LD + c)]) != want && ++wrong <= 5)
        ADD_FAILURE() << "R=" << R << " Cn=" << Cn << " rows=" << rows << " cols=" << cols
                      << ": element (" << r << ", " << c << ") is " << float(got[size_t(r * LD + c)])
                      << ", want " << want;
    }
  EXPECT_EQ(wrong, 0);
}

TEST(CudaBlockTile, FixedShapeCopies) {
  DT_REQUIRE_GPU();
  // The register-state recurrences' tiles: bf16 chunk × key dim, float chunk × value columns
  // (16, 32, 64), a row of 64 floats; whole, short by rows and a vector of columns.
  for (int rows : {64, 59, 1})
    for (int cols : {128, 120, 8}) check_fixed_copy<64, 128, 136, 128, bf16>(rows, cols, 2048);
  for (int rows : {64, 37})
    for (int cols : {32, 28}) check_fixed_copy<64, 32, 36, 128, float>(rows, cols, 128);
  check_fixed_copy<64, 16, 20, 64, float>(50, 16, 132);
  check_fixed_copy<64, 64, 68, 256, float>(64, 60, 64);
  check_fixed_copy<64, 32, 40, 256, bf16>(33, 24, 4096);
  check_fixed_copy<1, 64, 64, 128, float>(1, 64, 64);
}

}  // namespace
}  // namespace deltatune
