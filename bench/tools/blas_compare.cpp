// sgemm throughput of OpenBLAS and oneDNN on the products of a Qwen3.5 forward (512 tokens,
// 0.8B shape): the measurement behind the choice of BLAS in docs/design-notes.md.
// Built and run by scripts/measure_blas.sh; not part of the library.
#include <cblas.h>
#include <dnnl.h>

#include <chrono>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  struct Shape { const char* what; long m, n, k; };
  const Shape shapes[] = {
      {"in_proj_qkv  512x1024 * 1024x6144", 512, 6144, 1024},
      {"mlp up       512x1024 * 1024x3584", 512, 3584, 1024},
      {"mlp down     512x3584 * 3584x1024", 512, 1024, 3584},
      {"lm_head part 512x1024 * 1024x16384", 512, 16384, 1024},
  };
  std::printf("%-38s %14s %14s\n", "product (row-major, B transposed)", "OpenBLAS GF/s", "oneDNN GF/s");
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m * s.k), 0.5f), b(size_t(s.n * s.k), 0.25f), c(size_t(s.m * s.n));
    for (size_t i = 0; i < a.size(); ++i) a[i] = float((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = float((i * 104729) % 1000) / 1000.0f - 0.5f;
    double rate[2];
    for (int lib = 0; lib < 2; ++lib) {
      auto run = [&] {
        if (lib == 0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.m), int(s.n), int(s.k), 1.0f,
                      a.data(), int(s.k), b.data(), int(s.k), 0.0f, c.data(), int(s.n));
        else
          dnnl_sgemm('N', 'T', s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.k, 0.0f, c.data(), s.n);
      };
      run();  // warm-up
      const int reps = 5;
      double best = 1e30;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        run();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = sec < best ? sec : best;
      }
      rate[lib] = 2.0 * double(s.m) * double(s.n) * double(s.k) / best / 1e9;
    }
    std::printf("%-38s %14.1f %14.1f\n", s.what, rate[0], rate[1]);
  }
  return argc > 5 ? 1 : 0;
}
