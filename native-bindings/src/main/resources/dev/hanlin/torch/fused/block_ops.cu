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

// ---- RMSNorm: one block per row; each thread keeps WIDTH columns in registers ----
// Launch: grid N, block = round_up(ceil(C / WIDTH), 32) <= 1024 threads; the launch bound caps the
// registers so that such a block fits an SM. A thread's WIDTH slots hold, with 16-byte vectors
// (C a multiple of the lanes and every pointer 16-byte aligned, so every row is: libtorch's bf16
// rows of C % 8 == 0), the vectors t, t + blockDim, ... of the row (one vector of 8 bf16, or two of
// 4 float); otherwise, element by element, the columns t + k * blockDim (coalesced 2- or 4-byte
// loads). The arithmetic of a column is the same either way; only the order of a row's sums is not.
#define WIDTH 8

template <typename T> __device__ __forceinline__ int slotColumn(int k, bool vec) {
  constexpr int L = Lanes<T>::N;
  return vec ? (threadIdx.x + (k / L) * blockDim.x) * L + k % L : threadIdx.x + k * blockDim.x;
}

// This thread's WIDTH slots of the row at p (C columns); slots past the row read 0.
template <typename T> __device__ __forceinline__ void loadRow(const T* p, int C, bool vec, float* v) {
  constexpr int L = Lanes<T>::N;
  if (vec) {
#pragma unroll
    for (int k = 0; k < WIDTH; k += L) {
      int j = threadIdx.x + (k / L) * blockDim.x;  // vector index in the row
      if (j * L < C) {
        load16(p, j, v + k);
      } else {
#pragma unroll
        for (int e = 0; e < L; e++) v[k + e] = 0.f;
      }
    }
  } else {
#pragma unroll
    for (int k = 0; k < WIDTH; k++) {
      int j = threadIdx.x + k * blockDim.x;
      v[k] = j < C ? ld(p, j) : 0.f;
    }
  }
}

template <typename T> __device__ __forceinline__ void storeRow(T* p, int C, bool vec, const float* v) {
  constexpr int L = Lanes<T>::N;
  if (vec) {
#pragma unroll
    for (int k = 0; k < WIDTH; k += L) {
      int j = threadIdx.x + (k / L) * blockDim.x;
      if (j * L < C) store16(p, j, v + k);
    }
  } else {
#pragma unroll
    for (int k = 0; k < WIDTH; k++) {
      int j = threadIdx.x + k * blockDim.x;
      if (j < C) st(p, j, v[k]);
    }
  }
}

template <typename T> __device__ __forceinline__ bool rowVectors(int C) {
  return C % Lanes<T>::N == 0;
}

// y = w * rt(v * rstd) for the row whose WIDTH slots this thread holds in v (zero past the row).
template <typename T>
__device__ void rmsNormRow(float* v, const T* w, T* y, float* rstd, long long row, int C,
                           float eps, bool vec, float* scratch) {
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < WIDTH; k++) ss += v[k] * v[k];
  float r = rsqrtf(blockSum(ss, scratch) / (float) C + eps);
  float wv[WIDTH];
  loadRow(w, C, vec, wv);
#pragma unroll
  for (int k = 0; k < WIDTH; k++) v[k] = wv[k] * rt<T>(v[k] * r);
  storeRow(y + row * (long long) C, C, vec, v);
  if (threadIdx.x == 0) rstd[row] = r;
}

template <typename T>
__device__ void rmsNormFwd(const T* x, const T* w, T* y, float* rstd, int C, float eps) {
  __shared__ float scratch[32];
  const bool vec = rowVectors<T>(C) && aligned16(x) && aligned16(w) && aligned16(y);
  const long long row = blockIdx.x;
  float v[WIDTH];
  loadRow(x + row * (long long) C, C, vec, v);
  rmsNormRow<T>(v, w, y, rstd, row, C, eps, vec, scratch);
}

// h = x + delta (stored in T), then RMSNorm of h from the registers that hold it.
template <typename T>
__device__ void addRmsNormFwd(const T* x, const T* delta, const T* w, T* h, T* y, float* rstd,
                              int C, float eps) {
  __shared__ float scratch[32];
  const bool vec = rowVectors<T>(C) && aligned16(x) && aligned16(delta) && aligned16(w) &&
                   aligned16(h) && aligned16(y);
  const long long row = blockIdx.x, base = row * (long long) C;
  float v[WIDTH], dv[WIDTH];
  loadRow(x + base, C, vec, v);
  loadRow(delta + base, C, vec, dv);
#pragma unroll
  for (int k = 0; k < WIDTH; k++) v[k] = rt<T>(v[k] + dv[k]);  // zero past the row stays zero
  storeRow(h + base, C, vec, v);
  rmsNormRow<T>(v, w, y, rstd, row, C, eps, vec, scratch);
}

// dx and per-block partial sums of the weight gradient. Block b handles rows
// [b*rowsPerBlock, min(N, (b+1)*rowsPerBlock)) and writes partial[b, :] (float32); rmsnorm_dw
// then sums the partials over blocks. dn = dy*w is rounded to T (libtorch stores it), then
// dx = rstd * (dn - xhat * mean(dn * xhat)) in float32, xhat = x * rstd. With res (else null),
// the residual stream's gradient is added as libtorch would: rt(dx) + res, rounded to T.
template <typename T>
__device__ void rmsNormBwd(const T* dy, const T* x, const T* w, const float* rstd, const T* res,
                           T* dx, float* partial, long long N, int C, int rowsPerBlock) {
  __shared__ float scratch[32];
  const bool vec = rowVectors<T>(C) && aligned16(dy) && aligned16(x) && aligned16(w) &&
                   aligned16(dx) && (res == nullptr || aligned16(res));
  float acc[WIDTH];  // w is re-read per row (L1) rather than held: registers bound the block size
#pragma unroll
  for (int k = 0; k < WIDTH; k++) acc[k] = 0.f;
  long long first = (long long) blockIdx.x * rowsPerBlock;
  long long last = min(N, first + rowsPerBlock);
  for (long long row = first; row < last; row++) {
    const long long base = row * (long long) C;
    const float r = rstd[row];
    float g[WIDTH], xh[WIDTH], wv[WIDTH];
    loadRow(dy + base, C, vec, g);
    loadRow(x + base, C, vec, xh);
    loadRow(w, C, vec, wv);
    float dot = 0.f;
#pragma unroll
    for (int k = 0; k < WIDTH; k++) {
      xh[k] *= r;
      acc[k] += g[k] * rt<T>(xh[k]);
      g[k] = rt<T>(g[k] * wv[k]);  // dn
      dot += g[k] * xh[k];
    }
    float m = blockSum(dot, scratch) / (float) C;
#pragma unroll
    for (int k = 0; k < WIDTH; k++) g[k] = r * (g[k] - xh[k] * m);
    if (res != nullptr) {
      loadRow(res + base, C, vec, wv);
#pragma unroll
      for (int k = 0; k < WIDTH; k++) g[k] = rt<T>(g[k]) + wv[k];
    }
    storeRow(dx + base, C, vec, g);
  }
#pragma unroll
  for (int k = 0; k < WIDTH; k++) {
    int j = slotColumn<T>(k, vec);
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

// q and k in one launch, written straight into row layout: heads [0, H) of q, [H, H+KV) of k and,
// in the backward, [H+KV, H+KV+NV) copied from v (no rotation), each head hh at columns
// [hh*D, (hh+1)*D) of rows (b*T + t) with row stride ot. Forward: out (B, T, H+KV, D) whose
// views are the rotated q and k as attention takes them (no transpose copy); backward: out is the
// fused q/k/v projection's output gradient (N, (H+2KV)*D), so neither a transpose nor a cat
// follows. Inputs: (B, heads, T, D) views with unit stride along D (their b, h, t strides given).
// lanes = 1: a thread per pair (d, d + D/2), as rope(). lanes = 16 / sizeof(T), which the caller
// passes only when D/2, every stride and cosB are multiples of it and every pointer is 16-byte
// aligned: a thread per lanes consecutive pairs, six 16-byte loads and two stores (the scalar
// kernel moves 2 or 4 bytes a load, far below the memory's bandwidth). Same formula per element.
// Grid (ceil(T*D/2/lanes / 256), B*(H+KV+NV)), 256 threads.
template <typename T, bool BACKWARD>
__device__ __forceinline__ void ropePair(float x1, float x2, float c1, float c2, float s1, float s2,
                                         float& o1, float& o2) {
  if (BACKWARD) {
    o1 = rt<T>(x1 * c1) + rt<T>(x2 * s2);
    o2 = rt<T>(x2 * c2) - rt<T>(x1 * s1);
  } else {
    o1 = rt<T>(x1 * c1) - rt<T>(x2 * s1);
    o2 = rt<T>(x2 * c2) + rt<T>(x1 * s2);
  }
}

template <typename T, bool BACKWARD>
__device__ void ropeQkv(const T* q, const T* k, const T* v, const T* cs, const T* sn, T* out,
                        int H, int KV, int NV, int T_, int D, long long qb, long long qh,
                        long long qt, long long kb, long long kh, long long kt, long long vb,
                        long long vh, long long vt, long long ot, long long cosB, int lanes) {
  constexpr int L = Lanes<T>::N;
  const int half = D >> 1;
  const int per = lanes == 1 ? half : half / L;  // threads per (b, head, t)
  const unsigned int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (unsigned int) T_ * (unsigned int) per) return;
  const int heads = H + KV + NV;
  const int b = blockIdx.y / heads, hh = blockIdx.y - b * heads;
  const int t = e / per, d = (e - t * per) * (lanes == 1 ? 1 : L);
  const long long ob = ((long long) b * T_ + t) * ot + (long long) hh * D + d;
  const T* x;
  long long xb;
  bool copy = false;
  if (hh < H) {
    x = q;
    xb = b * qb + hh * qh + t * qt;
  } else if (hh < H + KV) {
    x = k;
    xb = b * kb + (hh - H) * kh + t * kt;
  } else {
    x = v;
    xb = b * vb + (hh - H - KV) * vh + t * vt;
    copy = true;
  }
  xb += d;
  const long long cb = b * cosB + (long long) t * D + d;
  if (lanes == 1) {
    const float x1 = ld(x, xb), x2 = ld(x, xb + half);
    if (copy) {
      st(out, ob, x1);
      st(out, ob + half, x2);
      return;
    }
    float o1, o2;
    ropePair<T, BACKWARD>(x1, x2, ld(cs, cb), ld(cs, cb + half), ld(sn, cb), ld(sn, cb + half),
                          o1, o2);
    st(out, ob, o1);
    st(out, ob + half, o2);
    return;
  }
  float x1[L], x2[L];
  load16(x + xb, 0, x1);
  load16(x + xb + half, 0, x2);
  if (!copy) {
    float c1[L], c2[L], s1[L], s2[L];
    load16(cs + cb, 0, c1);
    load16(cs + cb + half, 0, c2);
    load16(sn + cb, 0, s1);
    load16(sn + cb + half, 0, s2);
#pragma unroll
    for (int j = 0; j < L; j++) {
      ropePair<T, BACKWARD>(x1[j], x2[j], c1[j], c2[j], s1[j], s2[j], x1[j], x2[j]);
    }
  }
  store16(out + ob, 0, x1);
  store16(out + ob + half, 0, x2);
}

// ---- SwiGLU: y = silu(g) * u, libtorch's two ops (silu rounded to T, then the product) ----
// Over (rows, cols) matrices with unit column stride and their own row strides, so that gate and
// up can be the two column halves of the fused gate/up GEMM's (N, 2I) output (row stride 2I) and
// the backward can write dgate and dup into the halves of one (N, 2I) gradient, the fused GEMM's
// input, with no copy on either side. Grid-stride over 16-byte vectors when cols and every row
// stride are multiples of the lanes and every pointer is 16-byte aligned (Llama's I is), else
// element by element. Launch: 256 threads, grid sized by vectors and capped.

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

// i in [0, rows*per) as (row, column); 32-bit division where the count allows (64-bit is slow).
__device__ __forceinline__ void rowCol(long long i, long long per, bool small, long long& r,
                                       long long& c) {
  if (small) {
    unsigned int q = (unsigned int) i / (unsigned int) per;
    r = q;
    c = i - (long long) q * per;
  } else {
    r = i / per;
    c = i - r * per;
  }
}

template <typename T> __device__ __forceinline__ bool vecStride(long long s) {
  return s % Lanes<T>::N == 0;
}

template <typename T>
__device__ void swigluFwd(const T* g, const T* u, T* y, long long rows, int cols, long long sg,
                          long long su, long long sy) {
  constexpr int L = Lanes<T>::N;
  long long first = (long long) blockIdx.x * blockDim.x + threadIdx.x;
  long long stride = (long long) gridDim.x * blockDim.x;
  bool vec = cols % L == 0 && vecStride<T>(sg) && vecStride<T>(su) && vecStride<T>(sy) &&
             aligned16(g) && aligned16(u) && aligned16(y);
  long long per = vec ? cols / L : cols, total = rows * per;
  bool small = total <= 0xffffffffll;
  long long r, c;
  if (vec) {
    for (long long v = first; v < total; v += stride) {
      rowCol(v, per, small, r, c);
      float a[L], b[L];
      load16(g + r * sg, c, a);
      load16(u + r * su, c, b);
#pragma unroll
      for (int k = 0; k < L; k++) a[k] = swigluOne<T>(a[k], b[k]);
      store16(y + r * sy, c, a);
    }
  } else {
    for (long long i = first; i < total; i += stride) {
      rowCol(i, per, small, r, c);
      st(y, r * sy + c, swigluOne<T>(ld(g, r * sg + c), ld(u, r * su + c)));
    }
  }
}

template <typename T>
__device__ void swigluBwd(const T* dy, const T* g, const T* u, T* dg, T* du, long long rows,
                          int cols, long long sdy, long long sg, long long su, long long sdg,
                          long long sdu) {
  constexpr int L = Lanes<T>::N;
  long long first = (long long) blockIdx.x * blockDim.x + threadIdx.x;
  long long stride = (long long) gridDim.x * blockDim.x;
  bool vec = cols % L == 0 && vecStride<T>(sdy) && vecStride<T>(sg) && vecStride<T>(su) &&
             vecStride<T>(sdg) && vecStride<T>(sdu) && aligned16(dy) && aligned16(g) &&
             aligned16(u) && aligned16(dg) && aligned16(du);
  long long per = vec ? cols / L : cols, total = rows * per;
  bool small = total <= 0xffffffffll;
  long long r, c;
  if (vec) {
    for (long long v = first; v < total; v += stride) {
      rowCol(v, per, small, r, c);
      float d[L], a[L], b[L];
      load16(dy + r * sdy, c, d);
      load16(g + r * sg, c, a);
      load16(u + r * su, c, b);
#pragma unroll
      for (int k = 0; k < L; k++) swigluGradOne<T>(d[k], a[k], b[k], a[k], b[k]);
      store16(dg + r * sdg, c, a);
      store16(du + r * sdu, c, b);
    }
  } else {
    for (long long i = first; i < total; i += stride) {
      rowCol(i, per, small, r, c);
      float a, b;
      swigluGradOne<T>(ld(dy, r * sdy + c), ld(g, r * sg + c), ld(u, r * su + c), a, b);
      st(dg, r * sdg + c, a);
      st(du, r * sdu + c, b);
    }
  }
}

// ---- Cross-entropy and its gradient, one block per row of logits (N, V), float32 math ----
// Pass 1: online softmax (running max and sum) per thread, merged over the block (warp shuffles,
// then one warp over the warps). Pass 2: dlogits = scale * (softmax - onehot(label)), zero rows
// where label == -100. rowLoss[n] = logsumexp - logit[label] (0 where ignored, NaN for a label
// outside [0, V)); the caller sums it. With V a multiple of the lanes and both tensors 16-byte
// aligned (V = 32000, 55296, 65536 in bf16 or float), both passes move 16-byte vectors: pass 1
// takes each vector's max first, so one rescale per vector rather than per element; the second
// pass reads the row again (from L2: a row is 64 KB at V = 32000 in bf16).
__device__ __forceinline__ void mergeMs(float& m, float& s, float m2, float s2) {
  float mm = fmaxf(m, m2);
  if (mm == NEG_INF) return;  // both empty
  s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
  m = mm;
}

template <typename T>
__device__ void crossEntropy(const T* logits, const long long* labels, float* rowLoss, T* dlogits,
                             int V, float scale) {
  constexpr int L = Lanes<T>::N;
  __shared__ float sm[32], ss[32];
  __shared__ float lse;
  const long long row = blockIdx.x;
  const long long base = row * (long long) V;
  const long long label = labels[row];
  const T* x = logits + base;
  T* dx = dlogits + base;
  const bool vec = V % L == 0 && aligned16(logits) && aligned16(dlogits);
  const int vectors = vec ? V / L : 0;  // the element loops below start at vectors * L
  if (label == -100) {
    float z[L];
#pragma unroll
    for (int k = 0; k < L; k++) z[k] = 0.f;
    for (int j = threadIdx.x; j < vectors; j += blockDim.x) store16(dx, j, z);
    for (int j = vectors * L + threadIdx.x; j < V; j += blockDim.x) st(dx, j, 0.f);
    if (threadIdx.x == 0) rowLoss[row] = 0.f;
    return;
  }
  float m = NEG_INF, s = 0.f;
  for (int j = threadIdx.x; j < vectors; j += blockDim.x) {
    float v[L];
    load16(x, j, v);
    float vm = v[0];
#pragma unroll
    for (int k = 1; k < L; k++) vm = fmaxf(vm, v[k]);
    if (vm > m) {
      s *= __expf(m - vm);
      m = vm;
    }
#pragma unroll
    for (int k = 0; k < L; k++) s += __expf(v[k] - m);
  }
  for (int j = vectors * L + threadIdx.x; j < V; j += blockDim.x) {
    float v = ld(x, j);
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
      rowLoss[row] = ok ? lse - ld(x, label) : __int_as_float(0x7fc00000);
    }
  }
  __syncthreads();
  const float l = lse;
  // fast exp: ~2^-21 relative, far inside the tolerance
  for (int j = threadIdx.x; j < vectors; j += blockDim.x) {
    float v[L];
    load16(x, j, v);
#pragma unroll
    for (int k = 0; k < L; k++) v[k] = scale * (__expf(v[k] - l) - (j * L + k == label ? 1.f : 0.f));
    store16(dx, j, v);
  }
  for (int j = vectors * L + threadIdx.x; j < V; j += blockDim.x) {
    float p = __expf(ld(x, j) - l);
    st(dx, j, scale * (p - (j == label ? 1.f : 0.f)));
  }
}

// ---- C entry points, one per element type ----
#define RMS(TN, T)                                                                               \
  extern "C" __global__ void __launch_bounds__(1024)                                             \
      rmsnorm_fwd_##TN(const T* x, const T* w, T* y, float* r, int C, float eps) {               \
    rmsNormFwd<T>(x, w, y, r, C, eps);                                                           \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(1024) add_rmsnorm_fwd_##TN(                      \
      const T* x, const T* d, const T* w, T* h, T* y, float* r, int C, float eps) {              \
    addRmsNormFwd<T>(x, d, w, h, y, r, C, eps);                                                  \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(1024) rmsnorm_bwd_##TN(                          \
      const T* dy, const T* x, const T* w, const float* r, const T* res, T* dx, float* partial,  \
      long long N, int C, int rowsPerBlock) {                                                    \
    rmsNormBwd<T>(dy, x, w, r, res, dx, partial, N, C, rowsPerBlock);                            \
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
  extern "C" __global__ void rope_qk_fwd_##TN(                                                   \
      const T* q, const T* k, const T* c, const T* s, T* o, int H, int KV, int T_, int D,        \
      long long qb, long long qh, long long qt, long long kb, long long kh, long long kt,        \
      long long ot, long long cosB, int lanes) {                                                 \
    ropeQkv<T, false>(q, k, nullptr, c, s, o, H, KV, 0, T_, D, qb, qh, qt, kb, kh, kt, 0, 0, 0,   \
                      ot, cosB, lanes);                                                          \
  }                                                                                              \
  extern "C" __global__ void rope_qkv_bwd_##TN(                                                  \
      const T* dq, const T* dk, const T* dv, const T* c, const T* s, T* o, int H, int KV,        \
      int T_, int D, long long qb, long long qh, long long qt, long long kb, long long kh,       \
      long long kt, long long vb, long long vh, long long vt, long long ot, long long cosB,       \
      int lanes) {                                                                               \
    ropeQkv<T, true>(dq, dk, dv, c, s, o, H, KV, KV, T_, D, qb, qh, qt, kb, kh, kt, vb, vh, vt,   \
                     ot, cosB, lanes);                                                           \
  }                                                                                              \
  extern "C" __global__ void swiglu_fwd_##TN(const T* g, const T* u, T* y, long long rows,        \
                                             int cols, long long sg, long long su,               \
                                             long long sy) {                                     \
    swigluFwd<T>(g, u, y, rows, cols, sg, su, sy);                                                \
  }                                                                                              \
  extern "C" __global__ void swiglu_bwd_##TN(const T* dy, const T* g, const T* u, T* dg, T* du,   \
                                             long long rows, int cols, long long sdy,            \
                                             long long sg, long long su, long long sdg,          \
                                             long long sdu) {                                    \
    swigluBwd<T>(dy, g, u, dg, du, rows, cols, sdy, sg, su, sdg, sdu);                            \
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
