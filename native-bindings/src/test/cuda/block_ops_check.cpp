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
  // C = 1001: no 16-byte vectors (element path); the others take the vector path (f32 and bf16)
  for (int C : {1000, 64, 2048, 1001}) {
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
    launch(rmsnorm_bwd_f32, dim3{(unsigned) blocks}, normThreads(C), (const float*) dy.data(), (const float*) x.data(), (const float*) w.data(), (const float*) r.data(), (const float*) nullptr, dx.data(), part.data(), (long long) N, C, rows);
    launch(rmsnorm_dw, dim3{(unsigned) (C + 31) / 32}, 1024u, (const float*) part.data(), dw.data(), blocks, C);
    check("  bwd dx", dx, edx, 1e-4, 1e-5); check("  bwd dw", dw, edw, 1e-4, 1e-5);
    // with the residual's gradient added in the same pass: exactly dx + res (float32)
    std::vector<float> dxr(N * C); std::vector<double> edxr(N * C);
    launch(rmsnorm_bwd_f32, dim3{(unsigned) blocks}, normThreads(C), (const float*) dy.data(), (const float*) x.data(), (const float*) w.data(), (const float*) r.data(), (const float*) dl.data(), dxr.data(), part.data(), (long long) N, C, rows);
    for (int i = 0; i < N * C; i++) edxr[i] = (float) (dx[i] + dl[i]);
    check("  bwd dx + residual", dxr, edxr, 0, 0);
    // bf16: same kernel through the bf16 loads/stores, against the float32 result
    std::vector<bf16> xb(N * C), wb(C), yb(N * C);
    auto tob = [](float f) { unsigned u = __float_as_uint(f); u += 0x7fff + ((u >> 16) & 1); return bf16{(unsigned short) (u >> 16)}; };
    for (int i = 0; i < N * C; i++) xb[i] = tob(x[i]);
    for (int j = 0; j < C; j++) wb[j] = tob(w[j]);
    std::vector<float> rb(N), yf(N * C);
    launch(rmsnorm_fwd_bf16, dim3{(unsigned) N}, normThreads(C), (const bf16*) xb.data(), (const bf16*) wb.data(), yb.data(), rb.data(), C, (float) eps);
    for (int i = 0; i < N * C; i++) yf[i] = __uint_as_float(((unsigned) yb[i].bits) << 16);
    check("  bf16 fwd vs exact", yf, ey, 1.0 / 64, 2e-2);
    // bf16 backward (dx and the weight gradient) against the exact float64 values
    std::vector<bf16> dyb(N * C), dxb(N * C);
    for (int i = 0; i < N * C; i++) dyb[i] = tob(dy[i]);
    launch(rmsnorm_bwd_bf16, dim3{(unsigned) blocks}, normThreads(C), (const bf16*) dyb.data(), (const bf16*) xb.data(), (const bf16*) wb.data(), (const float*) rb.data(), (const bf16*) nullptr, dxb.data(), part.data(), (long long) N, C, rows);
    launch(rmsnorm_dw, dim3{(unsigned) (C + 31) / 32}, 1024u, (const float*) part.data(), dw.data(), blocks, C);
    std::vector<float> dxf(N * C);
    double mx = 0; for (double v : edx) mx = std::max(mx, std::fabs(v));
    double mw = 0; for (double v : edw) mw = std::max(mw, std::fabs(v));
    for (int i = 0; i < N * C; i++) dxf[i] = __uint_as_float(((unsigned) dxb[i].bits) << 16);
    check("  bf16 bwd dx vs exact", dxf, edx, 1.0 / 32, 3e-2 * mx);
    check("  bf16 bwd dw vs exact", dw, edw, 1.0 / 32, 3e-2 * mw);
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
    long long R = 7; int I = 333;
    launch(swiglu_fwd_f32, dim3{2}, 256u, (const float*) g.data(), (const float*) u.data(), y.data(), R, I, (long long) I, (long long) I, (long long) I);
    launch(swiglu_bwd_f32, dim3{3}, 256u, (const float*) dy.data(), (const float*) g.data(), (const float*) u.data(), dg.data(), du.data(), R, I, (long long) I, (long long) I, (long long) I, (long long) I, (long long) I);
    for (long long i = 0; i < n; i++) {
      double s = 1 / (1 + std::exp(-(double) g[i]));
      ey[i] = g[i] * s * u[i]; edu[i] = dy[i] * g[i] * s; edg[i] = dy[i] * u[i] * (s + g[i] * s * (1 - s));
    }
    check("swiglu fwd (grid-stride)", y, ey, 1e-5, 1e-5); check("  bwd dgate", dg, edg, 1e-5, 1e-5); check("  bwd dup", du, edu, 1e-5, 1e-5);
  }
  // SwiGLU's 16-byte vector path against its element path, on gate as the first column half of
  // one (R, 2I) matrix (row stride 2I, as the fused gate/up GEMM writes it), up with a row stride of
  // its own (I + 8, so that a mixed-up stride shows), and the backward written into the halves of
  // one (R, 2I) gradient; then I = 8*13 + 3 (not a multiple of the
  // lanes: element path). A base pointer 1 element off 16-byte alignment forces the element path
  // for the whole call: bitwise the same, f32 and bf16. Contiguous outputs are checked against it.
  for (int bf = 0; bf < 2; bf++) for (int I : {8 * 13, 8 * 13 + 3}) {
    long long R = 5, n = R * I; int L = bf ? 8 : 4;
    auto g = rnd(n, 3), u = rnd(n), dy = rnd(n);
    auto run = [&](auto tag, int off) {  // outputs as floats: y, dgate, dup
      using T = decltype(tag);
      long long span = (4 * n / L + 4 * R + 4) * L;  // elements of each of four arrays, 16-byte multiple
      std::vector<Pack16> buf(4 * span / L + 1);
      T* base = reinterpret_cast<T*>(buf.data());
      T *GU = base + off, *D = base + span + off, *Y = base + 2 * span + off, *U = base + 3 * span + off;
      const long long SU = I + 8;
      std::vector<Pack16> gbuf(span / L + 1);
      T* DGU = reinterpret_cast<T*>(gbuf.data()) + off;
      for (long long r = 0; r < R; r++) for (int c = 0; c < I; c++) {
        st(GU, r * 2 * I + c, g[r * I + c]); st(U, r * SU + c, u[r * I + c]); st(D, r * I + c, dy[r * I + c]);
      }
      launch(swigluFwd<T>, dim3{2}, 64u, (const T*) GU, (const T*) U, Y, R, I, 2LL * I, SU, (long long) I);
      launch(swigluBwd<T>, dim3{3}, 64u, (const T*) D, (const T*) GU, (const T*) U, DGU, DGU + I, R, I, (long long) I, 2LL * I, SU, 2LL * I, 2LL * I);
      std::vector<float> out(3 * n);
      for (long long r = 0; r < R; r++) for (int c = 0; c < I; c++) {
        out[r * I + c] = ld(Y, r * I + c); out[n + r * I + c] = ld(DGU, r * 2 * I + c); out[2 * n + r * I + c] = ld(DGU, r * 2 * I + I + c);
      }
      return out;
    };
    auto vec = bf ? run(bf16{}, 0) : run(0.f, 0), el = bf ? run(bf16{}, 1) : run(0.f, 1);
    std::vector<double> want(el.begin(), el.end());
    char name[64]; std::snprintf(name, 64, "swiglu %s strided I=%d vec = elem", bf ? "bf16" : "f32", I);
    check(name, vec, want, 0, 0);
    if (!bf) {  // and the strided result against the naive formulas
      std::vector<double> e(3 * n);
      for (long long i = 0; i < n; i++) {
        double s = 1 / (1 + std::exp(-(double) g[i]));
        e[i] = g[i] * s * u[i]; e[n + i] = dy[i] * u[i] * (s + g[i] * s * (1 - s)); e[2 * n + i] = dy[i] * g[i] * s;
      }
      check("  vs formulas", vec, e, 1e-5, 1e-5);
    }
  }
  // ---- q and k in one RoPE launch, written as rows; the backward also copies dv into its rows ----
  // bitwise equal to the one-tensor kernels (rope_fwd / rope_bwd) and a plain copy
  // lanes 1: a thread per pair; lanes 4: a thread per 4 pairs with 16-byte loads (D/2 = 8)
  for (int lanes : {1, 4}) for (int packed : {0, 1}) {
    int B = 2, H = 4, KV = 2, T = 21, D = 16, W = (H + 2 * KV) * D; long long N = (long long) B * T;
    auto qkv = rnd(N * W), ang = rnd((packed ? B : 1) * T * D, 3), g = rnd(N * W);
    std::vector<float> cs(ang.size()), sn(ang.size());
    for (size_t i = 0; i < ang.size(); i++) { cs[i] = std::cos(ang[i]); sn[i] = std::sin(ang[i]); }
    long long cosB = packed ? (long long) T * D : 0, sb = (long long) T * W, st = W;
    int half = D / 2; unsigned gx = (T * half + 255) / 256, gxl = (T * half / lanes + 255) / 256;
    // q, k as (B, heads, T, D) views of the fused (N, W) projection output
    const float *q = qkv.data(), *k = qkv.data() + H * D;
    std::vector<float> out(N * (H + KV) * D), rq((long long) B * H * T * D), rk((long long) B * KV * T * D);
    launch(rope_qk_fwd_f32, dim3{gxl, (unsigned) (B * (H + KV))}, 256u, q, k, (const float*) cs.data(), (const float*) sn.data(), out.data(), H, KV, T, D, sb, (long long) D, st, sb, (long long) D, st, (long long) (H + KV) * D, cosB, lanes);
    launch(rope_fwd_f32, dim3{gx, (unsigned) (B * H)}, 256u, q, (const float*) cs.data(), (const float*) sn.data(), rq.data(), H, T, D, sb, (long long) D, st, 1LL, cosB);
    launch(rope_fwd_f32, dim3{gx, (unsigned) (B * KV)}, 256u, k, (const float*) cs.data(), (const float*) sn.data(), rk.data(), KV, T, D, sb, (long long) D, st, 1LL, cosB);
    std::vector<float> got, want1;
    for (int b = 0; b < B; b++) for (int hh = 0; hh < H + KV; hh++) for (int t = 0; t < T; t++) for (int d = 0; d < D; d++) {
      got.push_back(out[((long long) b * T + t) * (H + KV) * D + hh * D + d]);
      want1.push_back(hh < H ? rq[(((long long) b * H + hh) * T + t) * D + d] : rk[(((long long) b * KV + hh - H) * T + t) * D + d]);
    }
    char name[64]; std::snprintf(name, 64, "rope q+k one launch lanes=%d packed=%d", lanes, packed);
    check(name, got, std::vector<double>(want1.begin(), want1.end()), 0, 0);
    // backward: dq, dk, dv (B, heads, T, D) views of the (N, W) buffer g, out rows (N, W)
    const float *dq = g.data(), *dk = g.data() + H * D, *dv = g.data() + (H + KV) * D;
    std::vector<float> rows(N * W), bq((long long) B * H * T * D), bk((long long) B * KV * T * D);
    launch(rope_qkv_bwd_f32, dim3{gxl, (unsigned) (B * (H + 2 * KV))}, 256u, dq, dk, dv, (const float*) cs.data(), (const float*) sn.data(), rows.data(), H, KV, T, D, sb, (long long) D, st, sb, (long long) D, st, sb, (long long) D, st, (long long) W, cosB, lanes);
    launch(rope_bwd_f32, dim3{gx, (unsigned) (B * H)}, 256u, dq, (const float*) cs.data(), (const float*) sn.data(), bq.data(), H, T, D, sb, (long long) D, st, 1LL, cosB);
    launch(rope_bwd_f32, dim3{gx, (unsigned) (B * KV)}, 256u, dk, (const float*) cs.data(), (const float*) sn.data(), bk.data(), KV, T, D, sb, (long long) D, st, 1LL, cosB);
    std::vector<double> want2(N * W);
    for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) for (int hh = 0; hh < H + 2 * KV; hh++) for (int d = 0; d < D; d++) {
      long long o = ((long long) b * T + t) * W + hh * D + d;
      want2[o] = hh < H ? bq[(((long long) b * H + hh) * T + t) * D + d]
               : hh < H + KV ? bk[(((long long) b * KV + hh - H) * T + t) * D + d] : g[o];
    }
    check("  qkv backward rows", rows, want2, 0, 0);
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
