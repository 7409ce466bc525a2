// The gated delta rule's register-state sequential kernels (ops/cuda/delta_rule_recurrence_mma.cuh)
// have no emulation: they are written for real warps (ldmatrix, mma.sync, barriers between warps).
// Here they run on the host with one host thread per GPU thread: the warp collectives exchange
// their operands through SimulatedWarp (mma_sync.cuh documents each one's fragment layout, which
// the GPU tests in tests/cuda check against the hardware) and Block::sync is a real barrier. Each
// kernel is compared with its block_tile.cuh twin (RecurrenceBody, BothRecurrencesBody) run by the
// emulation on the same workspace, which the other tests check against the float64 reference: so
// CI checks the key split, the exchange between warps, the stages and every index of the
// register-state kernels. Slow (threads meet at every collective): small cases only.
//
// Tolerance: 1e-4 of the largest value (and a bf16 rounding step for values stored as bf16). Both
// sides form the same bf16 hi + lo operands and sum their products in float, in different orders.
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "ops/cuda/delta_rule_recurrence_mma.cuh"

// Host code only: the device pass of this file sees none of it (the simulation hooks exist only on
// the host).
#if !defined(__CUDA_ARCH__)
namespace deltatune::cuda {
namespace {

using mma::FragA;
using mma::FragB;

float bf16_bits_to_float(uint16_t x) {
  bf16 b;
  std::memcpy(&b, &x, 2);
  return to_float(b);
}
float low_half(uint32_t x) { return bf16_bits_to_float(uint16_t(x & 0xffff)); }
float high_half(uint32_t x) { return bf16_bits_to_float(uint16_t(x >> 16)); }
uint32_t pack_bits(const bf16& lo, const bf16& hi) {
  uint16_t l, h;
  std::memcpy(&l, &lo, 2);
  std::memcpy(&h, &hi, 2);
  return uint32_t(l) | (uint32_t(h) << 16);
}

// What the lanes of one warp share while they meet in a collective.
struct WarpMeeting {
  std::barrier<> barrier{32};
  const bf16* rows[32];
  FragA a[32];
  FragB b[32];
};

struct BlockMeeting {
  explicit BlockMeeting(int threads) : barrier(threads), warps(threads / 32) {
    for (auto& w : warps) w = std::make_unique<WarpMeeting>();
    for (auto& n : named) n = std::make_unique<std::barrier<>>(64);
  }
  std::barrier<> barrier;
  std::vector<std::unique_ptr<WarpMeeting>> warps;
  std::unique_ptr<std::barrier<>> named[16];  // the kernels use named barriers of 64 threads
};

struct Lane final : SimulatedBlock, mma::SimulatedWarp {
  BlockMeeting* block;
  WarpMeeting* warp;
  int lane;

  void sync() override { block->barrier.arrive_and_wait(); }

  void named_barrier(int id, int threads) override {
    ASSERT_EQ(threads, 64);
    block->named[id]->arrive_and_wait();
  }

  // Matrix i's rows are the addresses of lanes 8i .. 8i + 7, 8 elements each.
  void ldmatrix_x4(uint32_t (&r)[4], const bf16* row, bool trans) override {
    warp->rows[lane] = row;
    warp->barrier.arrive_and_wait();
    const int g = lane / 4, q = lane % 4;
    for (int i = 0; i < 4; ++i) {
      auto at = [&](int rr, int cc) { return warp->rows[8 * i + rr][cc]; };
      r[i] = trans ? pack_bits(at(2 * q, g), at(2 * q + 1, g))
                   : pack_bits(at(g, 2 * q), at(g, 2 * q + 1));
    }
    warp->barrier.arrive_and_wait();
  }

  void mma(float (&d)[4], const FragA& a, const FragB& b) override {
    warp->a[lane] = a;
    warp->b[lane] = b;
    warp->barrier.arrive_and_wait();
    float A[16][16], B[16][8];
    for (int L = 0; L < 32; ++L) {
      const int gl = L / 4, ql = L % 4;
      for (int x = 0; x < 4; ++x) {
        const int row = gl + 8 * (x & 1), col = 2 * ql + 8 * (x >> 1);
        A[row][col] = low_half(warp->a[L].r[x]);
        A[row][col + 1] = high_half(warp->a[L].r[x]);
      }
      for (int x = 0; x < 2; ++x) {
        B[2 * ql + 8 * x][gl] = low_half(warp->b[L].r[x]);
        B[2 * ql + 8 * x + 1][gl] = high_half(warp->b[L].r[x]);
      }
    }
    const int g = lane / 4, q = lane % 4;
    for (int x = 0; x < 4; ++x) {
      const int row = g + 8 * (x >> 1), col = 2 * q + (x & 1);
      float sum = d[x];
      for (int kk = 0; kk < 16; ++kk) sum += A[row][kk] * B[kk][col];
      d[x] = sum;
    }
    warp->barrier.arrive_and_wait();
  }
};

// Runs body over grid with `threads` host threads per block, one block at a time.
template <class Body>
void simulate(const Body& body, dim3 grid, int threads, size_t smem_bytes) {
  std::vector<char> smem(smem_bytes + 128);
  char* base = smem.data() + (128 - reinterpret_cast<uintptr_t>(smem.data()) % 128) % 128;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::memset(smem.data(), 0xff, smem.size());  // NaN: nothing may read what no one wrote
        BlockMeeting meeting(threads);
        std::vector<std::thread> lanes;
        for (int t = 0; t < threads; ++t)
          lanes.emplace_back([&, t] {
            Lane lane;
            lane.block = &meeting;
            lane.warp = meeting.warps[t / 32].get();
            lane.lane = t % 32;
            simulated_block = &lane;
            mma::simulated_warp = &lane;
            body(Block{t, threads}, int(x), int(y), int(z), base);
            simulated_block = nullptr;
            mma::simulated_warp = nullptr;
          });
        for (auto& l : lanes) l.join();
      }
}

// The emulation's way: one thread per block.
template <class Body>
void emulate(const Body& body, dim3 grid, size_t smem_bytes) {
  std::vector<char> smem(smem_bytes + 128);
  char* base = smem.data() + (128 - reinterpret_cast<uintptr_t>(smem.data()) % 128) % 128;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) body(Block{0, 1}, int(x), int(y), int(z), base);
}

struct Case {
  int Hk, Hv, dk, dv;
  std::vector<int> cu;
};

// Inputs, the chunk table and the workspace PrepBody leaves (forward or backward).
struct Setup {
  Dims d{};
  std::vector<int32_t> table;
  Table tab{};
  std::vector<bf16> q, k, v, d_out;
  std::vector<float> g, beta, initial, d_final;
  std::vector<char> ws_bytes;
  Workspace<bf16> ws{};

  Setup(const Case& c, bool backward) {
    constexpr int C = kChunk<bf16>;
    std::vector<int32_t> t0, len, first;
    for (size_t s = 0; s + 1 < c.cu.size(); ++s) {
      first.push_back(int32_t(t0.size()));
      for (int t = c.cu[s]; t < c.cu[s + 1]; t += C) {
        t0.push_back(t);
        len.push_back(std::min(C, c.cu[s + 1] - t));
      }
    }
    first.push_back(int32_t(t0.size()));
    const int chunks = int(t0.size()), T = c.cu.back();
    table = t0;
    table.insert(table.end(), len.begin(), len.end());
    table.insert(table.end(), first.begin(), first.end());
    tab = {table.data(), table.data() + chunks, table.data() + 2 * chunks};
    d = {c.Hk,
         c.Hv,
         c.dk,
         c.dv,
         round_up(c.dk, 16),
         round_up(c.dv, 16),
         c.Hv / c.Hk,
         T,
         chunks,
         int(c.cu.size()) - 1};
    Rng rng(7 + c.dk + c.Hv);
    auto normal = [&](size_t n, float scale) {
      std::vector<bf16> x(n);
      for (auto& e : x) e = from_float<bf16>(scale * float(rng.normal()));
      return x;
    };
    q = normal(size_t(T) * c.Hk * c.dk, 1 / std::sqrt(float(c.dk)));
    k = normal(q.size(), 1 / std::sqrt(float(c.dk)));
    v = normal(size_t(T) * c.Hv * c.dv, 1);
    d_out = normal(v.size(), 1);
    for (int i = 0; i < T * c.Hv; ++i) {
      g.push_back(-0.3f * float(std::exp(0.5 * rng.normal())));
      beta.push_back(float(1 / (1 + std::exp(-rng.normal()))));
    }
    const size_t states = size_t(d.num_sequences) * c.Hv * c.dk * c.dv;
    for (size_t i = 0; i < states; ++i) {
      initial.push_back(0.3f * float(rng.normal()));
      d_final.push_back(float(rng.normal()));
    }
    size_t bytes = 0;
    carve_workspace<bf16>(d, C, backward, nullptr, &bytes);
    ws_bytes.assign(bytes, char(0xff));
    ws = carve_workspace<bf16>(d, C, backward, ws_bytes.data(), &bytes);
    using Prep = PrepBody<bf16, true>;
    using PrepForward = PrepBody<bf16, false>;
    if (backward)
      emulate(Prep{d, tab, q.data(), k.data(), v.data(), d_out.data(), g.data(), beta.data(), ws},
              dim3(chunks, c.Hv), Prep::smem_bytes(d));
    else
      emulate(PrepForward{d, tab, q.data(), k.data(), v.data(), nullptr, g.data(), beta.data(), ws},
              dim3(chunks, c.Hv), PrepForward::smem_bytes(d));
  }
};

// Elements stored as bf16 may also round to the neighbouring bf16 value: 2^-8 of their size more.
// step: that rounding as a share of the value, where the caller's bf16 values are formed in
// different orders on the two sides (a whole bf16 step, up to 2^-7 of a value at the bottom of its
// binade, for outputs whose float sums differ by more than float rounding before they round).
template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, const char* what,
                  double step = 1.0 / 256) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double rounding = std::is_same_v<T, bf16> ? step : 0.0;
  double scale = 0, worst = -1;  // worst: error over its bound
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i)
    scale = std::max(scale, std::abs(double(to_float(want[i]))));
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = to_float(want[i]), e = std::abs(double(to_float(got[i])) - w);
    const double over = e / (1e-4 * scale + rounding * std::abs(w) + 1e-30);
    if (!(over <= worst)) {  // NaN counts as worst
      worst = std::isnan(over) ? INFINITY : over;
      at = i;
    }
  }
  EXPECT_LE(worst, 1.0) << what << ": worst at " << at << ": got " << to_float(got[at]) << ", want "
                        << to_float(want[at]) << " (scale " << scale << ")";
}

template <class T>
std::vector<T> copy_of(const T* p, size_t n) {
  return std::vector<T>(p, p + n);
}

template <int NW, int KS>
void check_forward(const Case& c) {
  SCOPED_TRACE("forward, NW=" + std::to_string(NW) + " KS=" + std::to_string(KS) +
               " dk=" + std::to_string(c.dk) + " dv=" + std::to_string(c.dv));
  Setup s(c, false);
  const size_t out_size = s.v.size(), states = s.initial.size();
  std::vector<bf16> out_want(out_size, from_float<bf16>(NAN)), out_got = out_want;
  std::vector<float> final_want(states, NAN), final_got = final_want;
  using Generic = RecurrenceBody<bf16, 16, false>;
  emulate(
      Generic{s.d, s.tab, s.k.data(), s.initial.data(), out_want.data(), final_want.data(), s.ws},
      dim3(s.d.num_sequences, s.d.Hv, s.d.DV / 16), Generic::smem_bytes(s.d));
  using Mma = RecurrenceMmaBody<NW, false, KS>;
  simulate(Mma{s.d, s.tab, s.k.data(), s.initial.data(), out_got.data(), final_got.data(), s.ws},
           dim3(s.d.num_sequences, s.d.Hv, (s.d.DV + Mma::kCols - 1) / Mma::kCols), Mma::kThreads,
           Mma::smem_bytes());
  expect_close(out_got, out_want, "out");
  expect_close(final_got, final_want, "final state");
}

template <int NW, int KS>
void check_backward(const Case& c) {
  SCOPED_TRACE("backward recurrences, NW=" + std::to_string(NW) + " KS=" + std::to_string(KS) +
               " dk=" + std::to_string(c.dk) + " dv=" + std::to_string(c.dv));
  Setup s(c, true);
  const Dims& d = s.d;
  const size_t states = s.initial.size(), ch = size_t(d.num_chunks) * d.Hv;
  const size_t ws_states = ch * d.DK * d.DV, ws_tiles = ch * 64 * d.DV;
  std::vector<float> d_init_want(states, NAN), d_init_got = d_init_want;
  using Generic = BothRecurrencesBody<bf16, 16>;
  emulate(Generic{{d, s.tab, s.k.data(), s.initial.data(), nullptr, nullptr, s.ws},
                  {d, s.tab, s.q.data(), s.k.data(), s.d_out.data(), s.d_final.data(),
                   d_init_want.data(), s.ws},
                  d.DV / 16},
          dim3(d.num_sequences, d.Hv, 2 * d.DV / 16), Generic::smem_bytes(d));
  const auto states_want = copy_of(s.ws.states, ws_states);
  const auto d_states_want = copy_of(s.ws.d_states, ws_states);
  const auto v_new_want = copy_of(s.ws.V_new, ws_tiles),
             v_lo_want = copy_of(s.ws.V_new_lo, ws_tiles);
  const auto dv_new_want = copy_of(s.ws.dV_new, ws_tiles);
  const auto dv_lo_want = copy_of(s.ws.dV_new_lo, ws_tiles);
  for (auto* p : {s.ws.states, s.ws.d_states}) std::fill(p, p + ws_states, NAN);
  for (auto* p : {s.ws.V_new, s.ws.V_new_lo, s.ws.dV_new, s.ws.dV_new_lo})
    std::fill(p, p + ws_tiles, from_float<bf16>(NAN));

  using Mma = BothRecurrencesMmaBody<NW, KS>;
  const int blocks = (d.DV + 16 * NW - 1) / (16 * NW);
  simulate(Mma{{d, s.tab, s.k.data(), s.initial.data(), nullptr, nullptr, s.ws},
               {d, s.tab, s.q.data(), s.k.data(), s.d_out.data(), s.d_final.data(),
                d_init_got.data(), s.ws},
               blocks},
           dim3(d.num_sequences, d.Hv, 2 * blocks), Mma::kThreads, Mma::smem_bytes());
  expect_close(copy_of(s.ws.states, ws_states), states_want, "entry states");
  expect_close(copy_of(s.ws.d_states, ws_states), d_states_want, "dS");
  // V' and dV' as hi + lo: the split itself may round differently on the two sides.
  auto joined = [&](const std::vector<bf16>& hi, const std::vector<bf16>& lo) {
    std::vector<float> x(hi.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = to_float(hi[i]) + to_float(lo[i]);
    return x;
  };
  expect_close(joined(copy_of(s.ws.V_new, ws_tiles), copy_of(s.ws.V_new_lo, ws_tiles)),
               joined(v_new_want, v_lo_want), "V'");
  expect_close(joined(copy_of(s.ws.dV_new, ws_tiles), copy_of(s.ws.dV_new_lo, ws_tiles)),
               joined(dv_new_want, dv_lo_want), "dV'");
  expect_close(d_init_got, d_init_want, "d initial state");
}

// block_product (block_mma.cuh) on simulated warps against block_matmul's plain loop, for every
// combination of transposed and split operands, accumulating, with more tiles than warps (two a
// warp per round, and a lone last one) and a first warp other than 0.
template <bool TransA, bool TransB>
void check_block_product(bool split_a, bool split_b, bool accumulate) {
  SCOPED_TRACE(std::string("block_product TransA=") + (TransA ? "1" : "0") +
               " TransB=" + (TransB ? "1" : "0") + " split_a=" + (split_a ? "1" : "0") +
               " split_b=" + (split_b ? "1" : "0") + " accumulate=" + (accumulate ? "1" : "0"));
  constexpr int M = 48, N = 80, K = 32, threads = 128;
  const int rows_a = TransA ? K : M, lda = (TransA ? M : K) + 8;
  const int rows_b = TransB ? N : K, ldb = (TransB ? K : N) + 8, ldc = N + 4;
  Rng rng(11);
  // hi and lo: random floats and what rounding them to bf16 lost (the product leaves out lo·lo).
  auto tile = [&](int n, std::vector<bf16>& hi, std::vector<bf16>& lo) {
    hi.resize(static_cast<size_t>(n));
    lo.resize(hi.size());
    for (size_t e = 0; e < hi.size(); ++e)
      store_split(hi.data(), lo.data(), int64_t(e), float(rng.normal()));
  };
  std::vector<bf16> a, a_lo, b, b_lo;
  tile(rows_a * lda, a, a_lo);
  tile(rows_b * ldb, b, b_lo);
  std::vector<float> c_want(size_t(M * ldc));
  for (auto& e : c_want) e = float(rng.normal());
  std::vector<float> c_got = c_want;
  const Operand<bf16> A = split(a.data(), split_a ? a_lo.data() : nullptr, lda);
  const Operand<bf16> B = split(b.data(), split_b ? b_lo.data() : nullptr, ldb);
  block_matmul<TransA, TransB>(Block{0, 1}, M, N, K, A, B, c_want.data(), ldc, accumulate, 1);
  simulate(
      [&](const Block& blk, int, int, int, char*) {
        block_product<TransA, TransB>(blk, M, N, K, A, B, c_got.data(), ldc, accumulate, 1);
      },
      dim3(1), threads, 0);
  expect_close(c_got, c_want, "C");
}

TEST(DeltaRuleMmaSimulated, BlockProduct) {
  for (int mode = 0; mode < 8; ++mode) {
    const bool split_a = mode & 1, split_b = mode & 2, accumulate = mode & 4;
    check_block_product<false, false>(split_a, split_b, accumulate);
    check_block_product<false, true>(split_a, split_b, accumulate);
    check_block_product<true, false>(split_a, split_b, accumulate);
    check_block_product<true, true>(split_a, split_b, accumulate);
  }
}

// The parallel kernels' GPU form (PrepBody and ChunkGradBody with the head dim fixed at 128 and
// their products on warps: block_product) on simulated warps, 16 a block as on the GPU, against
// the emulation of their generic form.
const Case kParallelDims{1, 2, 128, 128, {0, 70}};  // a full chunk and a partial one

template <class T>
std::vector<T> take(T* p, size_t n, T fill) {
  std::vector<T> x(p, p + n);
  std::fill(p, p + n, fill);
  return x;
}

void check_prep_warps(bool backward) {
  {
    SCOPED_TRACE(backward ? "PrepBody, backward" : "PrepBody, forward");
    Setup s(kParallelDims, backward);  // runs the generic PrepBody (emulated)
    const Dims& d = s.d;
    const size_t ch = size_t(d.num_chunks) * d.Hv, C = 64;
    const bf16 nan16 = from_float<bf16>(NAN);
    const auto gamma = take(s.ws.gamma, ch * C, float(NAN));
    const auto W = take(s.ws.W, ch * C * d.DK, nan16);
    const auto U = take(s.ws.U, ch * C * d.DV, float(NAN));
    std::vector<bf16> Qt, Qt_lo, Tinv;
    std::vector<float> O_local, dV_local;
    if (backward) {
      Tinv = take(s.ws.Tinv, ch * C * C, nan16);
      dV_local = take(s.ws.dV_local, ch * C * d.DV, float(NAN));
    } else {
      Qt = take(s.ws.Qt, ch * C * d.DK, nan16);
      Qt_lo = take(s.ws.Qt_lo, ch * C * d.DK, nan16);
      O_local = take(s.ws.O_local, ch * C * d.DV, float(NAN));
    }
    auto run = [&](auto body) {
      using Body = decltype(body);
      simulate(body, dim3(d.num_chunks, d.Hv), Body::kThreads, Body::smem_bytes(d));
    };
    if (backward)
      run(PrepBody<bf16, true, 128>{d, s.tab, s.q.data(), s.k.data(), s.v.data(), s.d_out.data(),
                                    s.g.data(), s.beta.data(), s.ws});
    else
      run(PrepBody<bf16, false, 128>{d, s.tab, s.q.data(), s.k.data(), s.v.data(), nullptr,
                                     s.g.data(), s.beta.data(), s.ws});
    expect_close(copy_of(s.ws.gamma, gamma.size()), gamma, "Γ");
    expect_close(copy_of(s.ws.W, W.size()), W, "W");
    expect_close(copy_of(s.ws.U, U.size()), U, "U");
    if (backward) {
      expect_close(copy_of(s.ws.Tinv, Tinv.size()), Tinv, "T");
      expect_close(copy_of(s.ws.dV_local, dV_local.size()), dV_local, "dV_local");
    } else {
      std::vector<float> got(Qt.size()), want(Qt.size());
      for (size_t i = 0; i < Qt.size(); ++i) {
        got[i] = to_float(s.ws.Qt[i]) + to_float(s.ws.Qt_lo[i]);
        want[i] = to_float(Qt[i]) + to_float(Qt_lo[i]);
      }
      expect_close(got, want, "Q~");
      expect_close(copy_of(s.ws.O_local, O_local.size()), O_local, "O_local");
    }
  }
}

TEST(DeltaRuleMmaSimulated, PrepWarps) {
  check_prep_warps(false);
  check_prep_warps(true);
}

void check_chunk_grad_warps() {
  Setup s(kParallelDims, true);
  const Dims& d = s.d;
  using Generic = BothRecurrencesBody<bf16, 16>;
  std::vector<float> d_init(s.initial.size());
  emulate(Generic{{d, s.tab, s.k.data(), s.initial.data(), nullptr, nullptr, s.ws},
                  {d, s.tab, s.q.data(), s.k.data(), s.d_out.data(), s.d_final.data(),
                   d_init.data(), s.ws},
                  d.DV / 16},
          dim3(d.num_sequences, d.Hv, 2 * d.DV / 16), Generic::smem_bytes(d));
  const size_t T = size_t(d.tokens), heads = size_t(d.Hv);
  const bf16 nan16 = from_float<bf16>(NAN);
  struct Out {
    std::vector<bf16> dq, dk, dv;
    std::vector<float> dg, dbeta, dqk_heads;
  };
  auto run = [&](auto body_tag) {
    using Body = decltype(body_tag);
    Out o{std::vector<bf16>(T * d.Hk * d.dk, nan16), std::vector<bf16>(T * d.Hk * d.dk, nan16),
          std::vector<bf16>(T * heads * d.dv, nan16), std::vector<float>(T * heads, NAN),
          std::vector<float>(T * heads, NAN), {}};
    std::fill(s.ws.dqk_heads, s.ws.dqk_heads + 2 * T * heads * d.dk, float(NAN));
    const Body body{d,           s.tab,       s.q.data(),  s.k.data(),     s.v.data(),
                    s.d_out.data(), s.beta.data(), o.dq.data(), o.dk.data(), o.dv.data(),
                    o.dg.data(),  o.dbeta.data(), s.ws};
    if constexpr (std::is_same_v<Body, ChunkGradBody<bf16, 128>>)
      simulate(body, dim3(d.num_chunks, d.Hv), Body::kThreads, Body::smem_bytes(d));
    else
      emulate(body, dim3(d.num_chunks, d.Hv), Body::smem_bytes(d));
    o.dqk_heads = copy_of(s.ws.dqk_heads, 2 * T * heads * d.dk);
    return o;
  };
  const Out want = run(ChunkGradBody<bf16>{});
  const Out got = run(ChunkGradBody<bf16, 128>{});
  expect_close(got.dqk_heads, want.dqk_heads, "dq, dk by value head");
  expect_close(got.dv, want.dv, "dv", 1.0 / 128);
  expect_close(got.dg, want.dg, "dg");
  expect_close(got.dbeta, want.dbeta, "dbeta");
}

TEST(DeltaRuleMmaSimulated, ChunkGradWarps) { check_chunk_grad_warps(); }

const Case kModelDims{1, 2, 128, 128, {0, 130}};
const Case kOddDims{1, 2, 36, 20, {0, 5, 69, 133}};  // padded to 48 and 32; partial chunks

TEST(DeltaRuleMmaSimulated, ForwardKeySplit) {
  check_forward<2, 2>(kModelDims);
  check_forward<2, 2>(kOddDims);
}
TEST(DeltaRuleMmaSimulated, ForwardOneWarpPerColumns) {
  check_forward<4, 1>(kModelDims);
  check_forward<1, 1>(kOddDims);
}
TEST(DeltaRuleMmaSimulated, BackwardKeySplit) {
  check_backward<4, 2>(kModelDims);
  check_backward<4, 2>(kOddDims);  // DV = 32: two of the four column groups idle
}
TEST(DeltaRuleMmaSimulated, BackwardOneWarpPerColumns) {
  check_backward<4, 1>(kModelDims);
  check_backward<2, 1>(kOddDims);
}

}  // namespace
}  // namespace deltatune::cuda
#endif  // __CUDA_ARCH__
