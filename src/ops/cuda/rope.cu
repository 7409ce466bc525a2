// Partial RoPE (ops/rope_cuda.h). One thread per rotated pair (token, head, i < rotary_dim/2):
//   out1 = x1 cos − s x2 sin,  out2 = x2 cos + s x1 sin     s = +1 forward, −1 backward (Rᵀ)
// Each pair is read and written by one thread, so the rotation is in place without a barrier.
#include <cmath>

#include "ops/cuda/kernel_runner.cuh"
#include "ops/rope_cuda.h"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 4 * kThreads;

// Angles in double: pos · theta^(-2i/r) reaches ~10^5 radians at long contexts, where float would
// lose the angle's fraction.
struct RopeTableBody {
  const int64_t* positions;
  int64_t tokens;
  int half;
  double theta;
  float *cos, *sin;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(tokens * half, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t e = int64_t(bx) * kPerBlock + b.thread; e < end; e += b.threads) {
      const int64_t t = e / half;
      const int i = int(e % half);
      const double angle = double(positions[t]) * ::pow(theta, -2.0 * i / (2.0 * half));
      cos[e] = float(::cos(angle));
      sin[e] = float(::sin(angle));
    }
  }
};

template <class T>
struct RopeBody {
  T* x;
  int64_t tokens;
  int heads;
  int64_t ld_token, ld_head;
  int half;
  const float *cos, *sin;
  float sign;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t per_token = int64_t(heads) * half;
    const int64_t end = cuda::min_of(tokens * per_token, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t e = int64_t(bx) * kPerBlock + b.thread; e < end; e += b.threads) {
      const int64_t t = e / per_token;
      const int h = int(e % per_token / half), i = int(e % half);
      T* xh = x + t * ld_token + h * ld_head;
      const float c = cos[t * half + i], s = sign * sin[t * half + i];
      const float x1 = to_float(xh[i]), x2 = to_float(xh[i + half]);
      xh[i] = from_float<T>(x1 * c - x2 * s);
      xh[i + half] = from_float<T>(x2 * c + x1 * s);
    }
  }
};

void check_rotary_dim(int rotary_dim) {
  DT_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0,
           "RoPE (CUDA): rotary_dim must be even and > 0, got ", rotary_dim);
}

template <class T>
void rotate(T* x, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head, int rotary_dim,
            const float* cos, const float* sin, float sign, const char* name, cuda::Target target) {
  check_rotary_dim(rotary_dim);
  const int half = rotary_dim / 2;
  cuda::launch<kThreads>(target, name,
                         RopeBody<T>{x, tokens, heads, ld_token, ld_head, half, cos, sin, sign},
                         cuda::blocks_for(tokens * heads * half, kPerBlock));
}

}  // namespace

void rope_cuda_table(const int64_t* positions, int64_t tokens, int rotary_dim, double theta,
                     float* cos, float* sin, cuda::Target target) {
  check_rotary_dim(rotary_dim);
  const int half = rotary_dim / 2;
  cuda::launch<kThreads>(target, "RoPE table",
                         RopeTableBody{positions, tokens, half, theta, cos, sin},
                         cuda::blocks_for(tokens * half, kPerBlock));
}

template <class T>
void rope_cuda_forward(T* x, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                       int rotary_dim, const float* cos, const float* sin, cuda::Target target) {
  rotate(x, tokens, heads, ld_token, ld_head, rotary_dim, cos, sin, 1.0f, "RoPE forward", target);
}

template <class T>
void rope_cuda_backward(T* dx, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                        int rotary_dim, const float* cos, const float* sin, cuda::Target target) {
  rotate(dx, tokens, heads, ld_token, ld_head, rotary_dim, cos, sin, -1.0f, "RoPE backward",
         target);
}

#define DT_INSTANTIATE(T)                                                                    \
  template void rope_cuda_forward<T>(T*, int64_t, int, int64_t, int64_t, int, const float*,  \
                                     const float*, cuda::Target);                            \
  template void rope_cuda_backward<T>(T*, int64_t, int, int64_t, int64_t, int, const float*, \
                                      const float*, cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
