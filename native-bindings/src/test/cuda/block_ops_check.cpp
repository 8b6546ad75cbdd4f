// block_ops.cu run on the CPU under cuda_emu.h, each kernel against a naive double-precision
// reference: the kernels' indexing (strided RoPE input, packed cos/sin, short last blocks), block
// reductions, barriers and warp shuffles, which the formula test (KernelFormulasTest) cannot see.
// RoPE's backward is checked as the transpose of its forward: <rope(x), g> = <x, rope_bwd(g)>.
// Run: native-bindings/src/test/cuda/emulate.sh (g++ 12 or later, C++20; about 2 minutes on 2 cores).
#include "cuda_emu.h"
#include "../../main/resources/dev/hanlin/torch/fused/block_ops.cu"
#include <cstdio>
#include <random>
static std::mt19937 rng(1);
static std::vector<float> rnd(size_t n, float s = 1) {
  std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
static int fails = 0;
static void check(const char* what, const std::vector<float>& a, const std::vector<double>& e, double rtol, double atol) {
  double worst = 0; size_t at = 0;
  for (size_t i = 0; i < a.size(); i++) { double d = std::fabs(a[i] - e[i]) - rtol * std::fabs(e[i]); if (!(d <= worst)) { worst = d; at = i; } }
  bool ok = worst <= atol;
  if (!ok) fails++;
  std::printf("%-28s %s  worst excess %.3g at %zu (got %.6g want %.6g)\n", what, ok ? "ok  " : "FAIL", worst, at, a[at], e[at]);
}
static unsigned normThreads(int c) { int t = (c + 7) / 8; return std::max(32, (t + 31) / 32 * 32); }
int main() {
  // ---- RMSNorm forward, fused add, backward with the 32x32 weight-gradient sum ----
  for (int C : {1000, 64, 2048}) {
    // C = 64: 100 rows, one a block, so the weight-gradient sum has more than 64 partial rows
    int N = C == 64 ? 100 : 7; double eps = 1e-5;
    auto x = rnd(N * C, 2), w = rnd(C, 0.1), dl = rnd(N * C), dy = rnd(N * C);
    for (auto& v : w) v += 1;
    std::vector<float> y(N * C), r(N), h(N * C), y2(N * C), r2(N);
    launch(rmsnorm_fwd_f32, dim3{(unsigned) N}, normThreads(C), (const float*) x.data(), (const float*) w.data(), y.data(), r.data(), C, (float) eps);
    launch(add_rmsnorm_fwd_f32, dim3{(unsigned) N}, normThreads(C), (const float*) x.data(), (const float*) dl.data(), (const float*) w.data(), h.data(), y2.data(), r2.data(), C, (float) eps);
    std::vector<double> ey(N * C), er(N), eh(N * C), ey2(N * C), er2(N), edx(N * C), edw(C, 0);
    for (int n = 0; n < N; n++) {
      double ss = 0, ss2 = 0;
      for (int j = 0; j < C; j++) { double v = x[n * C + j]; ss += v * v; eh[n * C + j] = (float) (x[n * C + j] + dl[n * C + j]); ss2 += eh[n * C + j] * eh[n * C + j]; }
      er[n] = 1 / std::sqrt(ss / C + eps); er2[n] = 1 / std::sqrt(ss2 / C + eps);
      double dot = 0;
      for (int j = 0; j < C; j++) {
        ey[n * C + j] = w[j] * x[n * C + j] * er[n]; ey2[n * C + j] = w[j] * eh[n * C + j] * er2[n];
        dot += dy[n * C + j] * w[j] * x[n * C + j] * er[n];
        edw[j] += dy[n * C + j] * x[n * C + j] * er[n];
      }
      for (int j = 0; j < C; j++) edx[n * C + j] = er[n] * (dy[n * C + j] * w[j] - x[n * C + j] * er[n] * dot / C);
    }
    char name[64];
    std::snprintf(name, 64, "rmsnorm fwd C=%d", C); check(name, y, ey, 1e-5, 1e-5);
    check("  rstd", r, er, 1e-5, 1e-6);
    check("  add: h", h, eh, 0, 0); check("  add: y", y2, ey2, 1e-5, 1e-5); check("  add: rstd", r2, er2, 1e-5, 1e-6);
    int rows = C == 64 ? 1 : 3, blocks = (N + rows - 1) / rows;
    std::vector<float> dx(N * C), part(blocks * C), dw(C);
    launch(rmsnorm_bwd_f32, dim3{(unsigned) blocks}, normThreads(C), (const float*) dy.data(), (const float*) x.data(), (const float*) w.data(), (const float*) r.data(), dx.data(), part.data(), (long long) N, C, rows);
    launch(rmsnorm_dw, dim3{(unsigned) (C + 31) / 32}, 1024u, (const float*) part.data(), dw.data(), blocks, C);
    check("  bwd dx", dx, edx, 1e-4, 1e-5); check("  bwd dw", dw, edw, 1e-4, 1e-5);
    // bf16: same kernel through the bf16 loads/stores, against the float32 result
    std::vector<bf16> xb(N * C), wb(C), yb(N * C);
    auto tob = [](float f) { unsigned u = __float_as_uint(f); u += 0x7fff + ((u >> 16) & 1); return bf16{(unsigned short) (u >> 16)}; };
    for (int i = 0; i < N * C; i++) xb[i] = tob(x[i]);
    for (int j = 0; j < C; j++) wb[j] = tob(w[j]);
    std::vector<float> rb(N), yf(N * C);
    launch(rmsnorm_fwd_bf16, dim3{(unsigned) N}, normThreads(C), (const bf16*) xb.data(), (const bf16*) wb.data(), yb.data(), rb.data(), C, (float) eps);
    for (int i = 0; i < N * C; i++) yf[i] = __uint_as_float(((unsigned) yb[i].bits) << 16);
    check("  bf16 fwd vs exact", yf, ey, 1.0 / 64, 2e-2);
  }
  // ---- RoPE on a transposed view, plain and per-row tables; backward is the forward's transpose ----
  for (int D : {8, 128}) for (int packed : {0, 1}) {
    int B = 2, H = 3, T = 37; long long n = (long long) B * H * T * D;
    auto mem = rnd(n), ang = rnd((packed ? B : 1) * T * D, 3), g = rnd(n);
    std::vector<float> cs(ang.size()), sn(ang.size());
    for (size_t i = 0; i < ang.size(); i++) { cs[i] = std::cos(ang[i]); sn[i] = std::sin(ang[i]); }
    // x (B, H, T, D) viewed on memory laid out (B, T, H, D)
    long long sb = (long long) T * H * D, sh = D, st = (long long) H * D, sd = 1, cosB = packed ? (long long) T * D : 0;
    std::vector<float> out(n), dx(n);
    int half = D / 2; unsigned gx = (T * half + 255) / 256;
    launch(rope_fwd_f32, dim3{gx, (unsigned) (B * H)}, 256u, (const float*) mem.data(), (const float*) cs.data(), (const float*) sn.data(), out.data(), H, T, D, sb, sh, st, sd, cosB);
    // dy contiguous (B, H, T, D)
    launch(rope_bwd_f32, dim3{gx, (unsigned) (B * H)}, 256u, (const float*) g.data(), (const float*) cs.data(), (const float*) sn.data(), dx.data(), H, T, D, (long long) H * T * D, (long long) T * D, (long long) D, 1LL, cosB);
    std::vector<double> e(n);
    double lhs = 0, rhs = 0;
    for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) for (int t = 0; t < T; t++) for (int d = 0; d < D; d++) {
      auto X = [&](int dd) { return (double) mem[b * sb + h * sh + t * st + dd]; };
      long long c = b * cosB + t * D + d, o = (((long long) b * H + h) * T + t) * D + d;
      double rot = d < half ? -X(d + half) : X(d - half);
      e[o] = X(d) * cs[c] + rot * sn[c];
      lhs += out[o] * (double) g[o];
      rhs += X(d) * dx[o];  // dx is contiguous (B,H,T,D); x at the same logical index
    }
    char name[64]; std::snprintf(name, 64, "rope fwd D=%d packed=%d", D, packed); check(name, out, e, 1e-5, 1e-5);
    std::vector<float> l{(float) lhs}; std::vector<double> rr{rhs};
    check("  <rope x, g> = <x, rope' g>", l, rr, 1e-5, 1e-4);
  }
  // ---- SwiGLU ----
  {
    long long n = 7 * 333; auto g = rnd(n, 3), u = rnd(n), dy = rnd(n);
    std::vector<float> y(n), dg(n), du(n); std::vector<double> ey(n), edg(n), edu(n);
    launch(swiglu_fwd_f32, dim3{2}, 256u, (const float*) g.data(), (const float*) u.data(), y.data(), n);
    launch(swiglu_bwd_f32, dim3{3}, 256u, (const float*) dy.data(), (const float*) g.data(), (const float*) u.data(), dg.data(), du.data(), n);
    for (long long i = 0; i < n; i++) {
      double s = 1 / (1 + std::exp(-(double) g[i]));
      ey[i] = g[i] * s * u[i]; edu[i] = dy[i] * g[i] * s; edg[i] = dy[i] * u[i] * (s + g[i] * s * (1 - s));
    }
    check("swiglu fwd (grid-stride)", y, ey, 1e-5, 1e-5); check("  bwd dgate", dg, edg, 1e-5, 1e-5); check("  bwd dup", du, edu, 1e-5, 1e-5);
  }
  // SwiGLU's 16-byte vector path against its element path (a pointer 1 element off 16-byte alignment
  // takes the element path for everything): bitwise the same, f32 and bf16, n with a tail
  for (int bf = 0; bf < 2; bf++) {
    long long n = 8 * 97 + 5; int L = bf ? 8 : 4; auto g = rnd(n + 8, 3), u = rnd(n + 8), dy = rnd(n + 8);
    auto run = [&](auto tag, int off) {  // outputs as floats, inputs starting `off` elements in
      using T = decltype(tag);
      std::vector<Pack16> buf(6 * (n / L + 2));  // 16-byte aligned storage for six arrays
      T* base = reinterpret_cast<T*>(buf.data()); long long span = (n / L + 2) * L;
      T *G = base + off, *U = base + span + off, *D = base + 2 * span + off, *Y = base + 3 * span + off,
        *DG = base + 4 * span + off, *DU = base + 5 * span + off;
      for (long long i = 0; i < n; i++) { st(G, i, g[i]); st(U, i, u[i]); st(D, i, dy[i]); }
      launch(swigluFwd<T>, dim3{2}, 64u, (const T*) G, (const T*) U, Y, n);
      launch(swigluBwd<T>, dim3{3}, 64u, (const T*) D, (const T*) G, (const T*) U, DG, DU, n);
      std::vector<float> out(3 * n);
      for (long long i = 0; i < n; i++) { out[i] = ld(Y, i); out[n + i] = ld(DG, i); out[2 * n + i] = ld(DU, i); }
      return out;
    };
    auto vec = bf ? run(bf16{}, 0) : run(0.f, 0), el = bf ? run(bf16{}, 1) : run(0.f, 1);
    std::vector<double> want(el.begin(), el.end());
    check(bf ? "swiglu bf16 vector = element" : "swiglu f32 vector = element", vec, want, 0, 0);
  }
  // ---- cross-entropy ----
  for (int V : {1000, 5000, 999}) {
    int N = 5; auto lg = rnd(N * V, 4); std::vector<long long> lab{3, -100, V - 1, 0, 17};
    unsigned th = std::min(1024, std::max(32, (V + 31) / 32)); th = (th + 31) / 32 * 32;
    std::vector<float> loss(N), d(N * V); float scale = 0.25f;
    launch(cross_entropy_f32, dim3{(unsigned) N}, th, (const float*) lg.data(), (const long long*) lab.data(), loss.data(), d.data(), V, scale);
    std::vector<double> el(N), ed(N * V);
    for (int n = 0; n < N; n++) {
      if (lab[n] == -100) { el[n] = 0; for (int j = 0; j < V; j++) ed[n * V + j] = 0; continue; }
      double m = -1e30, s = 0; for (int j = 0; j < V; j++) m = std::max(m, (double) lg[n * V + j]);
      for (int j = 0; j < V; j++) s += std::exp(lg[n * V + j] - m);
      double lse = m + std::log(s); el[n] = lse - lg[n * V + lab[n]];
      for (int j = 0; j < V; j++) ed[n * V + j] = scale * (std::exp(lg[n * V + j] - lse) - (j == lab[n]));
    }
    char name[64]; std::snprintf(name, 64, "cross-entropy V=%d (%u thr)", V, th);
    check(name, loss, el, 1e-5, 1e-5); check("  dlogits", d, ed, 1e-5, 1e-7);
    std::vector<long long> bad{V}; std::vector<float> l1(1), d1(V);
    launch(cross_entropy_f32, dim3{1}, th, (const float*) lg.data(), (const long long*) bad.data(), l1.data(), d1.data(), V, scale);
    if (!std::isnan(l1[0])) { fails++; std::printf("  label V: loss %g, not NaN FAIL\n", l1[0]); }
  }
  std::printf(fails ? "%d FAILED\n" : "all ok\n", fails);
  return fails != 0;
}
