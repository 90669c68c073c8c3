// Private helpers of the kernels in this folder: the one launch call, grid sizing,
// grid-stride loops, a walk
// over the elements of one channel of an [n, c, spatial] tensor, and fixed-order
// (deterministic) warp and block reductions. Not part of the public contract.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace cnnk {
namespace detail {

// Every kernel of this folder is launched here, so that one place holds the <<<>>> syntax:
// the kernel simulator (tests/sim, built with CNNK_SIM) runs the same kernels, compiled as
// C++, on the CPU instead. The launcher reads cudaGetLastError() after it (the launch lint
// in tests/engine checks that).
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
#if defined(CNNK_SIM)
  // By value: a launch recorded into a graph runs after this call has returned.
  cnnk_sim::launch_on(stream, grid, block, shared_bytes, [kernel, args...] { kernel(args...); });
#else
  // clang-format would split the closing >>> here, in a template.
  // clang-format off
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
  // clang-format on
#endif
}

// The launch's dynamic shared memory as an array `name` of T.
#if defined(CNNK_SIM)
#define CNNK_DYNAMIC_SHARED(T, name) T* const name = static_cast<T*>(::cnnk_sim::dynamic_shared())
#else
#define CNNK_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

constexpr int kWarp = 32;
constexpr int kThreads = 256;         // elementwise kernels
constexpr int64_t kMaxBlocks = 8192;  // grid-stride loops cover the rest

// Blocks for `size` items of `threads` per block, at least 1, at most kMaxBlocks.
inline unsigned grid_for(int64_t size, int threads = kThreads) {
  const int64_t blocks = (size + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// A 2-D grid for kernels that stream over every channel of an [n, c, spatial] tensor
// with a per-channel constant: y over channels (grid-stride past 65535), x over the
// channel's `per_channel` values, about 4096 blocks in all.
inline dim3 channel_grid(int64_t channels, int64_t per_channel, int threads = kThreads) {
  const int64_t ys = channels < 65535 ? (channels > 0 ? channels : 1) : 65535;
  const int64_t want = (per_channel + threads - 1) / threads;
  const int64_t cap = 4096 / ys > 1 ? 4096 / ys : 1;
  const int64_t xs = want < 1 ? 1 : (want < cap ? want : cap);
  return dim3(static_cast<unsigned>(xs), static_cast<unsigned>(ys));
}

// Block size for one block reducing `length` values: a power of two in [32, max_threads].
inline int reduce_threads(int64_t length, int max_threads) {
  int t = kWarp;
  while (t < max_threads && t < length) t *= 2;
  return t;
}

// The first index of this thread in a 1-D grid-stride loop, and the stride (64-bit).
__device__ __forceinline__ int64_t global_index() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_stride() { return int64_t(gridDim.x) * blockDim.x; }

// Walks the elements of one channel c of an [n, channels, spatial] tensor in the order
// j = n * spatial + s, starting at j0 and stepping by `step`, without a division per
// element: offset() is the element's index in the tensor; valid() ends the walk.
struct ChannelWalk {
  int64_t n, s;                   // current position
  int64_t dn, ds;                 // step split as step = dn * spatial + ds, ds < spatial
  int64_t batch, spatial, plane;  // plane = channels * spatial (stride between samples)
  int64_t base;                   // c * spatial

  // step > 0. A tensor with spatial <= 0 has no elements: the walk is empty.
  __device__ __forceinline__ ChannelWalk(int64_t batch_, int64_t channels, int64_t spatial_,
                                         int64_t c, int64_t j0, int64_t step)
      : n(j0 / (spatial_ > 0 ? spatial_ : 1)),
        s(j0 % (spatial_ > 0 ? spatial_ : 1)),
        dn(step / (spatial_ > 0 ? spatial_ : 1)),
        ds(step % (spatial_ > 0 ? spatial_ : 1)),
        batch(spatial_ > 0 ? batch_ : 0),
        spatial(spatial_ > 0 ? spatial_ : 1),
        plane(channels * spatial),
        base(c * spatial) {}
  __device__ __forceinline__ bool valid() const { return n < batch; }
  __device__ __forceinline__ int64_t offset() const { return n * plane + base + s; }
  __device__ __forceinline__ void next() {
    s += ds;
    n += dn;
    if (s >= spatial) {  // s < 2 * spatial here, so one wrap suffices
      s -= spatial;
      ++n;
    }
  }
};

// Warp sum in a fixed order: every lane ends with the same, bit-identical value (each
// butterfly step adds the same two operands on both lanes of a pair, and float addition
// is commutative). The whole warp must take part.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Block sum in a fixed order (warp butterflies, then warp 0 over the per-warp partials):
// deterministic for a given block size. blockDim.x must be a multiple of 32 and every
// thread of the block must call it. `scratch` holds kScratch values of shared memory.
// Every thread gets the total. The call may be repeated with the same scratch with no
// barrier between: a call writes the partials (slots 0..31) only after the previous
// call's last barrier, before which every read of them happened, and the total (slot 32)
// only after its own first barrier, which no thread reaches before it has read the
// previous total.
template <class T>
__device__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T t = lane < warps ? scratch[lane] : T(0);
    t = warp_sum(t);
    if (lane == 0) scratch[kWarp] = t;
  }
  __syncthreads();
  return scratch[kWarp];
}
// Shared scratch of block_sum: 32 partials and the total.
constexpr int kScratch = kWarp + 1;

// floor(a / b) for b > 0 and any sign of a.
__device__ __forceinline__ int floor_div(int a, int b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

}  // namespace detail
}  // namespace cnnk
