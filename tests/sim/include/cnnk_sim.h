// The kernel simulator: runs the CUDA kernels of kernels/src, compiled as C++, on the CPU,
// so that the kernel-versus-reference suites (tests/kernels) execute on machines without a
// GPU, under AddressSanitizer and UBSan in CI.
//
// What it models: every thread of a block is a fiber with its own stack; blocks run one
// after another; __syncthreads() waits until every live thread of the block has arrived;
// warp shuffles exchange values between the 32 lanes of a warp and wait for the lanes
// their mask names; __shared__ variables are statics (one copy, shared by the block), the
// dynamic shared memory is one heap buffer per block of exactly the bytes the launch asked
// for, so an overrun is an ASan finding; device memory is host memory. A barrier that some
// thread never reaches (still running or exited), or a shuffle whose mask names a lane
// that has exited or waits elsewhere, is reported as a launch failure naming the block,
// not a hang. The dynamic shared memory starts as NaN bytes in every block, and so does
// every cudaMalloc, so a read of what nothing wrote shows up.
//
// Launches, copies and library calls go to streams, which the rest of the simulated
// runtime provides (cuda_runtime_api.h, sim_device.cpp).
//
// What it does not model: timing, concurrency between blocks or streams, the memory model
// (every write is visible at once), warp-synchronous code without a *_sync call, register
// and occupancy limits. A kernel that passes here can still be wrong on a GPU; one that
// fails here is wrong.
//
// Include order: the fake <cuda_runtime_api.h> includes this file, so every kernel source
// sees it first.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

// ---- The vector types the kernels and launchers use ------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// ---- Execution-space and storage qualifiers --------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One copy per kernel (template instance): the block's shared memory, since blocks run one
// at a time.
#define __shared__ static

struct CUstream_st;

namespace cnnk_sim {

// Where the running simulated thread sits in its launch.
struct Coords {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};
const Coords& coords();

// Block barrier, and the exchange under the xor shuffle: publishes this lane's 8 bytes,
// waits for the lanes of `mask`, returns those of lane (this lane ^ lane_mask).
void syncthreads();
uint64_t shuffle_xor_bits(unsigned mask, uint64_t mine, int lane_mask);
// The running thread's lane in its warp, or -1 outside a kernel.
int lane_or_none();
// The launch's dynamic shared memory (null when it asked for none).
void* dynamic_shared();

// Runs `body` once per thread of every block of the grid, now. Returns false, with the
// reason reported (cudaGetLastError), when the configuration is invalid or a block failed.
bool launch(dim3 grid, dim3 block, size_t dynamic_smem, const std::function<void()>& body);
// False, with the reason reported, when a launch of this shape would be refused.
bool launch_config_valid(dim3 grid, dim3 block, size_t dynamic_smem);
// A launch in `stream`'s order (sim_device.cpp): the configuration is checked now, the grid
// runs at once or, while the stream is being captured, at each replay; `body` holds the
// kernel's arguments by value.
bool launch_on(CUstream_st* stream, dim3 grid, dim3 block, size_t dynamic_smem,
               std::function<void()> body);

template <class T>
T shuffle_xor(unsigned mask, T v, int lane_mask) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  const uint64_t got = shuffle_xor_bits(mask, bits, lane_mask);
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}

}  // namespace cnnk_sim

// ---- Built-in variables -----------------------------------------------------------------
#define threadIdx (::cnnk_sim::coords().thread)
#define blockIdx (::cnnk_sim::coords().block)
#define blockDim (::cnnk_sim::coords().block_dim)
#define gridDim (::cnnk_sim::coords().grid_dim)

// ---- Synchronization and warp intrinsics -------------------------------------------------
inline void __syncthreads() { ::cnnk_sim::syncthreads(); }
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  return ::cnnk_sim::shuffle_xor(mask, v, lane_mask);
}

// ---- Arithmetic intrinsics ----------------------------------------------------------------
// The kernels spell out round-to-nearest operations (the _rn forms) where they must not be
// contracted into FMAs; the simulator is built with -ffp-contract=off, so plain operators
// round the same way.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
// The fast exponential: the library's expf, which is at least as accurate.
inline float __expf(float a) { return std::exp(a); }
