// A tiny CUDA emulator for checking block_ops.cu's indexing and reductions on a CPU: one std::thread
// per CUDA thread, blocks run one after another (so static variables act as __shared__ memory),
// __syncthreads is a block barrier, warp shuffles go through a buffer with a warp barrier.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>
struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::unique_ptr<std::barrier<>> emuBlock;
inline std::vector<std::unique_ptr<std::barrier<>>> emuWarps;
inline float emuShfl[1024];
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
#define __restrict__
inline void __syncthreads() { emuBlock->arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int o) {
  unsigned t = threadIdx.x;
  auto& w = *emuWarps[t / 32];
  emuShfl[t] = v;
  w.arrive_and_wait();
  float r = emuShfl[t ^ o];
  w.arrive_and_wait();
  return r;
}
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
#include <math.h>
inline long long min(long long a, long long b) { return a < b ? a : b; }
template <typename... A>
void launch(void (*k)(A...), dim3 grid, unsigned block, A... args) {
  gridDim = grid; blockDim = dim3{block, 1, 1};
  for (unsigned by = 0; by < grid.y; by++)
    for (unsigned bx = 0; bx < grid.x; bx++) {
      emuBlock = std::make_unique<std::barrier<>>(block);
      emuWarps.clear();
      for (unsigned w = 0; w < (block + 31) / 32; w++) emuWarps.push_back(std::make_unique<std::barrier<>>(32));
      std::vector<std::thread> ts;
      for (unsigned t = 0; t < block; t++)
        ts.emplace_back([=] {
          threadIdx = dim3{t, 0, 0}; blockIdx = dim3{bx, by, 0};
          k(args...);
          emuBlock->arrive_and_drop();
          emuWarps[t / 32]->arrive_and_drop();
        });
      for (auto& t : ts) t.join();
    }
}
