// Fused elementwise kernels of a Llama block (issue 16), compiled at run time by NVRTC
// (dev.hanlin.torch.cuda.Nvrtc) for the card's architecture. One source, two element types:
// every kernel is a template over the storage type T (float or bf16) and exported as
// <name>_f32 / <name>_bf16 with C linkage. No CUDA headers: bf16 is its 16 bits, converted by hand
// with the same round-to-nearest-even as c10::BFloat16, so this compiles with NVRTC alone.
//
// Numerics follow the libtorch expressions the reference ops use (HF's Llama): arithmetic in
// float32, and every intermediate that libtorch would store in the tensor dtype is rounded to it
// here too (rt<T>), so bf16 results differ from the reference only by reduction order.

struct bf16 { unsigned short bits; };
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16* p, long long i) {
  return __uint_as_float(((unsigned int) p[i].bits) << 16);
}
__device__ __forceinline__ unsigned short f2bf(float f) {
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short) ((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short) (u >> 16);
}
__device__ __forceinline__ void st(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16* p, long long i, float v) { p[i].bits = f2bf(v); }

// Rounds v to T's precision and back (identity for float): where libtorch would store a bf16.
template <typename T> __device__ __forceinline__ float rt(float v);
template <> __device__ __forceinline__ float rt<float>(float v) { return v; }
template <> __device__ __forceinline__ float rt<bf16>(float v) {
  return __uint_as_float(((unsigned int) f2bf(v)) << 16);
}

// Sum over the block; every thread gets the result. scratch holds 32 floats.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- RMSNorm: one block per row; each thread keeps its <= MAXV columns in registers ----
// Launch: grid N, block = round_up(ceil(C / 8), 32) <= 1024 threads; the launch bound caps the
// registers so that such a block fits an SM.

template <typename T, int MAXV>
__device__ void rmsNormRow(const T* x, const T* w, T* y, float* rstd, long long row, int C,
                           float eps, float* scratch) {
  float v[MAXV];
  float ss = 0.f;
  const long long base = row * (long long) C;
#pragma unroll
  for (int k = 0; k < MAXV; k++) {
    int j = threadIdx.x + k * blockDim.x;
    v[k] = j < C ? ld(x, base + j) : 0.f;
    ss += v[k] * v[k];
  }
  float r = rsqrtf(blockSum(ss, scratch) / (float) C + eps);
#pragma unroll
  for (int k = 0; k < MAXV; k++) {
    int j = threadIdx.x + k * blockDim.x;
    if (j < C) st(y, base + j, ld(w, j) * rt<T>(v[k] * r));
  }
  if (threadIdx.x == 0) rstd[row] = r;
}

template <typename T, int MAXV>
__device__ void rmsNormFwd(const T* x, const T* w, T* y, float* rstd, int C, float eps) {
  __shared__ float scratch[32];
  rmsNormRow<T, 8>(x, w, y, rstd, blockIdx.x, C, eps, scratch);
}

// h = x + delta (stored in T), then RMSNorm of h.
template <typename T, int MAXV>
__device__ void addRmsNormFwd(const T* x, const T* delta, const T* w, T* h, T* y, float* rstd,
                              int C, float eps) {
  __shared__ float scratch[32];
  const long long base = (long long) blockIdx.x * C;
  for (int j = threadIdx.x; j < C; j += blockDim.x) {
    st(h, base + j, ld(x, base + j) + ld(delta, base + j));
  }
  // each thread reads back only the columns it wrote itself, so no barrier is needed
  rmsNormRow<T, 8>(h, w, y, rstd, blockIdx.x, C, eps, scratch);
}

// dx and per-block partial sums of the weight gradient. Block b handles rows
// [b*rowsPerBlock, min(N, (b+1)*rowsPerBlock)) and writes partial[b, :] (float32); rmsNormDw
// then sums the partials over blocks. dn = dy*w is rounded to T (libtorch stores it), then
// dx = rstd * (dn - xhat * mean(dn * xhat)) in float32, xhat = x * rstd.
template <typename T, int MAXV>
__device__ void rmsNormBwd(const T* dy, const T* x, const T* w, const float* rstd, T* dx,
                           float* partial, long long N, int C, int rowsPerBlock) {
  __shared__ float scratch[32];
  float acc[MAXV];  // w is re-read per row (L1) rather than held: registers bound the block size
#pragma unroll
  for (int k = 0; k < MAXV; k++) acc[k] = 0.f;
  long long first = (long long) blockIdx.x * rowsPerBlock;
  long long last = min(N, first + rowsPerBlock);
  for (long long row = first; row < last; row++) {
    const long long base = row * (long long) C;
    const float r = rstd[row];
    float xh[MAXV], dn[MAXV];
    float dot = 0.f;
#pragma unroll
    for (int k = 0; k < MAXV; k++) {
      int j = threadIdx.x + k * blockDim.x;
      float g = j < C ? ld(dy, base + j) : 0.f;
      xh[k] = j < C ? ld(x, base + j) * r : 0.f;
      dn[k] = j < C ? rt<T>(g * ld(w, j)) : 0.f;
      acc[k] += g * rt<T>(xh[k]);
      dot += dn[k] * xh[k];
    }
    float m = blockSum(dot, scratch) / (float) C;
#pragma unroll
    for (int k = 0; k < MAXV; k++) {
      int j = threadIdx.x + k * blockDim.x;
      if (j < C) st(dx, base + j, r * (dn[k] - xh[k] * m));
    }
  }
#pragma unroll
  for (int k = 0; k < MAXV; k++) {
    int j = threadIdx.x + k * blockDim.x;
    if (j < C) partial[(long long) blockIdx.x * C + j] = acc[k];
  }
}

// dweight[j] = sum over blocks of partial[b, j]. A block of 1024 threads takes 32 columns: lane
// tx = column, ty = which partial rows (b = ty, ty + 32, ...), then the 32 sums of a column are
// added in a fixed order, so the result is the same every run. Grid ceil(C / 32).
extern "C" __global__ void __launch_bounds__(1024)
    rmsnorm_dw(const float* partial, float* dw, int blocks, int C) {
  __shared__ float sums[32][33];  // +1: no bank conflicts on the column read
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int j = blockIdx.x * 32 + tx;
  float s = 0.f;
  if (j < C) {
    for (int b = ty; b < blocks; b += 32) s += partial[(long long) b * C + j];
  }
  sums[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && j < C) {
    float t = 0.f;
    for (int k = 0; k < 32; k++) t += sums[k][tx];
    dw[j] = t;
  }
}

// ---- RoPE, HF rotate-half: out = x*cos + rotate_half(x)*sin, rotate_half(x) = [-x2, x1] ----
// x (B, H, T, D) with any strides (q and k arrive as transposed views); out contiguous.
// cos/sin (T, D) (cosB = 0) or (B, 1, T, D) (cosB = T*D), contiguous, dtype T.
// One thread per pair (d, d + D/2) of one (b, h, t): grid (ceil(T*D/2 / 256), B*H), 256 threads;
// 32-bit index math (64-bit division would cost more than the memory traffic).
// Forward:  out[d] = x1*c1 - x2*s1,        out[d+D/2] = x2*c2 + x1*s2
// Backward: dx[d]  = dy1*c1 + dy2*s2,      dx[d+D/2]  = dy2*c2 - dy1*s1
// (1 = index d, 2 = index d + D/2; each product rounded to T as libtorch stores it).
template <typename T, bool BACKWARD>
__device__ void rope(const T* x, const T* cs, const T* sn, T* out, int H, int T_, int D,
                     long long sb, long long sh, long long st_, long long sd, long long cosB) {
  const int half = D >> 1;
  const unsigned int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (unsigned int) T_ * (unsigned int) half) return;
  const int b = blockIdx.y / H, h = blockIdx.y - (blockIdx.y / H) * H;
  const int t = e / half, d = e - t * half;
  const long long xb = b * sb + h * sh + t * st_;
  const long long ob = ((long long) blockIdx.y * T_ + t) * D;
  const long long cb = b * cosB + (long long) t * D;
  const float x1 = ld(x, xb + d * sd), x2 = ld(x, xb + (d + half) * sd);
  const float c1 = ld(cs, cb + d), c2 = ld(cs, cb + d + half);
  const float s1 = ld(sn, cb + d), s2 = ld(sn, cb + d + half);
  if (BACKWARD) {
    st(out, ob + d, rt<T>(x1 * c1) + rt<T>(x2 * s2));
    st(out, ob + d + half, rt<T>(x2 * c2) - rt<T>(x1 * s1));
  } else {
    st(out, ob + d, rt<T>(x1 * c1) - rt<T>(x2 * s1));
    st(out, ob + d + half, rt<T>(x2 * c2) + rt<T>(x1 * s2));
  }
}

// ---- 16-byte vectors (4 float or 8 bf16 a load): fewer, wider memory instructions ----
struct alignas(16) Pack16 { unsigned int w[4]; };
template <typename T> struct Lanes { static constexpr int N = 16 / sizeof(T); };
__device__ __forceinline__ void unpack(const Pack16& p, float* f, const float*) {
#pragma unroll
  for (int k = 0; k < 4; k++) f[k] = __uint_as_float(p.w[k]);
}
__device__ __forceinline__ void unpack(const Pack16& p, float* f, const bf16*) {
#pragma unroll
  for (int k = 0; k < 4; k++) {  // little-endian: element 2k is the low half of word k
    f[2 * k] = __uint_as_float(p.w[k] << 16);
    f[2 * k + 1] = __uint_as_float(p.w[k] & 0xffff0000u);
  }
}
__device__ __forceinline__ void pack(const float* f, Pack16& p, float*) {
#pragma unroll
  for (int k = 0; k < 4; k++) p.w[k] = __float_as_uint(f[k]);
}
__device__ __forceinline__ void pack(const float* f, Pack16& p, bf16*) {
#pragma unroll
  for (int k = 0; k < 4; k++)
    p.w[k] = (unsigned int) f2bf(f[2 * k]) | ((unsigned int) f2bf(f[2 * k + 1]) << 16);
}
template <typename T> __device__ __forceinline__ void load16(const T* p, long long v, float* f) {
  unpack(reinterpret_cast<const Pack16*>(p)[v], f, p);
}
template <typename T> __device__ __forceinline__ void store16(T* p, long long v, const float* f) {
  Pack16 q;
  pack(f, q, p);
  reinterpret_cast<Pack16*>(p)[v] = q;
}
__device__ __forceinline__ bool aligned16(const void* p) {
  return (((unsigned long long) p) & 15u) == 0;
}

// ---- SwiGLU: y = silu(g) * u, libtorch's two ops (silu rounded to T, then the product) ----
// Grid-stride over 16-byte vectors when every pointer is 16-byte aligned (libtorch's allocations
// are), then element by element for the tail (and for everything when a pointer is not aligned).
// Launch: 256 threads, grid sized by vectors and capped (the loop covers the rest).

template <typename T> __device__ __forceinline__ float swigluOne(float gv, float uv) {
  return rt<T>(gv / (1.f + expf(-gv))) * uv;
}
template <typename T>
__device__ __forceinline__ void swigluGradOne(float dv, float gv, float uv, float& dg, float& du) {
  float e = expf(-gv);
  float sig = 1.f / (1.f + e);
  float s = rt<T>(gv / (1.f + e));
  du = dv * s;
  dg = rt<T>(dv * uv) * sig * (1.f + gv * (1.f - sig));
}

template <typename T>
__device__ void swigluFwd(const T* g, const T* u, T* y, long long n) {
  constexpr int L = Lanes<T>::N;
  long long first = (long long) blockIdx.x * blockDim.x + threadIdx.x;
  long long stride = (long long) gridDim.x * blockDim.x;
  long long vectors = aligned16(g) && aligned16(u) && aligned16(y) ? n / L : 0;
  for (long long v = first; v < vectors; v += stride) {
    float a[L], b[L];
    load16(g, v, a);
    load16(u, v, b);
#pragma unroll
    for (int k = 0; k < L; k++) a[k] = swigluOne<T>(a[k], b[k]);
    store16(y, v, a);
  }
  for (long long i = vectors * L + first; i < n; i += stride) {
    st(y, i, swigluOne<T>(ld(g, i), ld(u, i)));
  }
}

template <typename T>
__device__ void swigluBwd(const T* dy, const T* g, const T* u, T* dg, T* du, long long n) {
  constexpr int L = Lanes<T>::N;
  long long first = (long long) blockIdx.x * blockDim.x + threadIdx.x;
  long long stride = (long long) gridDim.x * blockDim.x;
  bool al = aligned16(dy) && aligned16(g) && aligned16(u) && aligned16(dg) && aligned16(du);
  long long vectors = al ? n / L : 0;
  for (long long v = first; v < vectors; v += stride) {
    float d[L], a[L], b[L];
    load16(dy, v, d);
    load16(g, v, a);
    load16(u, v, b);
#pragma unroll
    for (int k = 0; k < L; k++) swigluGradOne<T>(d[k], a[k], b[k], a[k], b[k]);
    store16(dg, v, a);
    store16(du, v, b);
  }
  for (long long i = vectors * L + first; i < n; i += stride) {
    float a, b;
    swigluGradOne<T>(ld(dy, i), ld(g, i), ld(u, i), a, b);
    st(dg, i, a);
    st(du, i, b);
  }
}

// ---- Cross-entropy and its gradient, one block per row of logits (N, V), float32 math ----
// Pass 1: online softmax (running max and sum) per thread, merged over the block. Pass 2:
// dlogits = scale * (softmax - onehot(label)), zero rows where label == -100. rowLoss[n] =
// logsumexp - logit[label] (0 where ignored, NaN for a label outside [0, V)); the caller sums it.
__device__ __forceinline__ void mergeMs(float& m, float& s, float m2, float s2) {
  float mm = fmaxf(m, m2);
  if (mm == NEG_INF) return;  // both empty
  s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
  m = mm;
}

template <typename T>
__device__ void crossEntropy(const T* logits, const long long* labels, float* rowLoss, T* dlogits,
                             int V, float scale) {
  __shared__ float sm[32], ss[32];
  __shared__ float lse;
  const long long row = blockIdx.x;
  const long long base = row * (long long) V;
  const long long label = labels[row];
  if (label == -100) {
    for (int j = threadIdx.x; j < V; j += blockDim.x) st(dlogits, base + j, 0.f);
    if (threadIdx.x == 0) rowLoss[row] = 0.f;
    return;
  }
  float m = NEG_INF, s = 0.f;
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    float v = ld(logits, base + j);
    if (v > m) {
      s = s * __expf(m - v) + 1.f;
      m = v;
    } else {
      s += __expf(v - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    mergeMs(m, s, m2, s2);
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  if (warp == 0) {
    m = lane < warps ? sm[lane] : NEG_INF;
    s = lane < warps ? ss[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) {
      float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
      mergeMs(m, s, m2, s2);
    }
    if (lane == 0) {
      lse = m + logf(s);
      bool ok = label >= 0 && label < V;
      rowLoss[row] = ok ? lse - ld(logits, base + label) : __int_as_float(0x7fc00000);
    }
  }
  __syncthreads();
  const float l = lse;
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    float p = __expf(ld(logits, base + j) - l);  // fast exp: ~2^-21 relative, far inside the tolerance
    st(dlogits, base + j, scale * (p - (j == label ? 1.f : 0.f)));
  }
}

// ---- C entry points, one per element type ----
#define RMS(TN, T)                                                                         \
  extern "C" __global__ void __launch_bounds__(1024)                                             \
      rmsnorm_fwd_##TN(const T* x, const T* w, T* y, float* r, int C, float eps) {               \
    rmsNormFwd<T, 8>(x, w, y, r, C, eps);                                                      \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(1024) add_rmsnorm_fwd_##TN(                      \
      const T* x, const T* d, const T* w, T* h, T* y, float* r, int C, float eps) {              \
    addRmsNormFwd<T, 8>(x, d, w, h, y, r, C, eps);                                             \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(1024) rmsnorm_bwd_##TN(                          \
      const T* dy, const T* x, const T* w, const float* r, T* dx, float* partial, long long N,    \
      int C, int rowsPerBlock) {                                                                 \
    rmsNormBwd<T, 8>(dy, x, w, r, dx, partial, N, C, rowsPerBlock);                            \
  }
#define ELEMENTWISE(TN, T)                                                                       \
  extern "C" __global__ void rope_fwd_##TN(const T* x, const T* c, const T* s, T* o, int H,       \
                                           int T_, int D, long long sb, long long sh,            \
                                           long long st_, long long sd, long long cosB) {        \
    rope<T, false>(x, c, s, o, H, T_, D, sb, sh, st_, sd, cosB);                                  \
  }                                                                                              \
  extern "C" __global__ void rope_bwd_##TN(const T* dy, const T* c, const T* s, T* dx, int H,     \
                                           int T_, int D, long long sb, long long sh,            \
                                           long long st_, long long sd, long long cosB) {        \
    rope<T, true>(dy, c, s, dx, H, T_, D, sb, sh, st_, sd, cosB);                                  \
  }                                                                                              \
  extern "C" __global__ void swiglu_fwd_##TN(const T* g, const T* u, T* y, long long n) {         \
    swigluFwd<T>(g, u, y, n);                                                                     \
  }                                                                                              \
  extern "C" __global__ void swiglu_bwd_##TN(const T* dy, const T* g, const T* u, T* dg, T* du,   \
                                             long long n) {                                      \
    swigluBwd<T>(dy, g, u, dg, du, n);                                                            \
  }                                                                                              \
  extern "C" __global__ void cross_entropy_##TN(const T* logits, const long long* labels,         \
                                                float* rowLoss, T* dlogits, int V,               \
                                                float scale) {                                   \
    crossEntropy<T>(logits, labels, rowLoss, dlogits, V, scale);                                  \
  }

RMS(f32, float)
RMS(bf16, bf16)
ELEMENTWISE(f32, float)
ELEMENTWISE(bf16, bf16)
