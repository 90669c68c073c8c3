// The kernel simulator's own semantics (tests/sim/include/cnnk_sim.h), on small kernels
// written here: barriers, shuffles, the built-in variables, dynamic shared memory, the
// launch checks, the wmma stand-in, and that what a GPU would not forgive (a missing or
// divergent barrier, a shuffle with an exited lane) fails here too instead of passing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/src/launch_util.cuh"
#include "mma.h"

namespace {

using cnnk::detail::launch;

// Each thread publishes a value and reads its neighbour's (`step` 1: the next thread's,
// -1: the previous one's): right only if the barrier holds every thread until all have
// written.
__global__ void rotate_kernel(int* out, int step, bool with_barrier) {
  __shared__ int slots[256];
  const int t = static_cast<int>(threadIdx.x), n = static_cast<int>(blockDim.x);
  slots[t] = t + 1000 * static_cast<int>(blockIdx.x);
  if (with_barrier) __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = slots[(t + step + n) % n];
}

std::vector<int> rotate(unsigned blocks, unsigned threads, int step, bool with_barrier) {
  std::vector<int> out(blocks * threads, -1);
  launch(rotate_kernel, blocks, threads, 0, nullptr, out.data(), step, with_barrier);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  return out;
}

int wrong(const std::vector<int>& out, int step, int threads) {
  int count = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const int b = static_cast<int>(i) / threads, t = static_cast<int>(i) % threads;
    count += out[i] != (t + step + threads) % threads + 1000 * b;
  }
  return count;
}

TEST(KernelSimulator, BarrierMakesEveryWriteVisible) {
  for (const int step : {1, -1}) EXPECT_EQ(wrong(rotate(3, 96, step, true), step, 96), 0);
}

// Each thread runs as far as it can before the next starts, in ascending order in even
// blocks and descending order in odd ones: a read of what a neighbour on either side has
// not yet written finds the previous block's value, as it could on a GPU without the
// barrier.
TEST(KernelSimulator, MissingBarrierIsExposedForEitherNeighbour) {
  for (const int step : {1, -1}) {
    SCOPED_TRACE(step);
    const std::vector<int> out = rotate(2, 64, step, false);
    EXPECT_GT(wrong(out, step, 64), 0);
  }
  // Block 1 runs descending: thread 63 reads slot 62 before thread 62 writes it.
  EXPECT_EQ(rotate(2, 64, -1, false)[64 + 63], 62);
}

__global__ void coords_kernel(int* out) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block * per_block + thread] += static_cast<int>(block * per_block + thread);
}

TEST(KernelSimulator, EveryThreadOfAThreeDimensionalLaunchRunsOnce) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> out(12 * 24, 0);
  launch(coords_kernel, grid, block, 0, nullptr, out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], static_cast<int>(i));
}

__global__ void warp_sum_kernel(const float* in, float* out) {
  float v = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[threadIdx.x] = v;
}

TEST(KernelSimulator, XorShufflesExchangeWithinEachWarp) {
  std::vector<float> in(64), out(64, 0.f);
  for (int i = 0; i < 64; ++i) in[i] = static_cast<float>(i);
  launch(warp_sum_kernel, 1, 64, 0, nullptr, in.data(), out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 496.f);    // 0 + ... + 31
  for (int i = 32; i < 64; ++i) EXPECT_EQ(out[i], 1520.f);  // 32 + ... + 63
}

__global__ void early_exit_kernel(int* out) {
  if (threadIdx.x >= 16) return;  // threads 16.. leave before the barrier
  __syncthreads();
  out[threadIdx.x] = 1;
}

// The hardware would let threads 0..15 through (exited threads count as arrived), but a
// barrier in code that not every thread reaches is undefined in CUDA: the launch fails.
TEST(KernelSimulator, BarrierThatExitedThreadsNeverReachedFailsTheLaunch) {
  std::vector<int> out(64, 0);
  launch(early_exit_kernel, 1, 64, 0, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
}

__global__ void half_warp_shuffle_kernel(float* out) {
  if (threadIdx.x % 32 >= 16) return;  // lanes 16..31 exit
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

TEST(KernelSimulator, ShuffleNamingAnExitedLaneFailsTheLaunch) {
  std::vector<float> out(32, 0.f);
  launch(half_warp_shuffle_kernel, 1, 32, 0, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the error is read once";
}

__global__ void shuffle_then_barrier_kernel(float* out) {
  float v = 1.f;
  if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);  // lanes 16.. never come
  __syncthreads();
  out[threadIdx.x] = v;
}

TEST(KernelSimulator, ShuffleWhosePartnersWaitAtABarrierIsADeadlock) {
  std::vector<float> out(32, 0.f);
  launch(shuffle_then_barrier_kernel, 1, 32, 0, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
}

__global__ void dynamic_shared_kernel(float* out) {
  CNNK_DYNAMIC_SHARED(float, buffer);
  buffer[threadIdx.x] = static_cast<float>(threadIdx.x) * 2.f;
  __syncthreads();
  out[threadIdx.x] = buffer[blockDim.x - 1 - threadIdx.x];
}

TEST(KernelSimulator, DynamicSharedMemoryIsTheLaunchsBuffer) {
  std::vector<float> out(128, 0.f);
  launch(dynamic_shared_kernel, 1, 128, 128 * sizeof(float), nullptr, out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(out[i], static_cast<float>(127 - i) * 2.f);
}

TEST(KernelSimulator, InvalidConfigurationsAreLaunchErrors) {
  std::vector<float> out(2048, 0.f);
  launch(dynamic_shared_kernel, 1, 2048, 0, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  launch(dynamic_shared_kernel, dim3(1, 70000), 32, 0, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  launch(dynamic_shared_kernel, 1, 32, 64 * 1024, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(out[0], 0.f) << "a refused launch runs nothing";
}

TEST(KernelSimulator, Tf32RoundsToNearestTiesAway) {
  namespace wmma = nvcuda::wmma;
  const float one = 1.f;
  EXPECT_EQ(wmma::__float_to_tf32(one), one);
  EXPECT_EQ(wmma::__float_to_tf32(1.f + std::ldexp(1.f, -12)), one);  // below half
  EXPECT_EQ(wmma::__float_to_tf32(1.f + std::ldexp(1.f, -11)), 1.f + std::ldexp(1.f, -10));  // tie
  EXPECT_EQ(wmma::__float_to_tf32(-1.f - std::ldexp(1.f, -11)), -1.f - std::ldexp(1.f, -10));
  EXPECT_TRUE(std::isinf(wmma::__float_to_tf32(INFINITY)));
  EXPECT_TRUE(std::isnan(wmma::__float_to_tf32(NAN)));
}

TEST(KernelSimulator, WmmaComputesTheTileProductInEitherLayout) {
  namespace wmma = nvcuda::wmma;
  // a: 16 x 8 stored column-major (ldm 16), b: 8 x 16 row-major (ldm 16); small integers,
  // so every sum is exact.
  std::vector<float> a(16 * 8), b(8 * 16), c(16 * 16, 0.f);
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 8; ++k) a[i + k * 16] = static_cast<float>((i * 3 + k) % 7 - 3);
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 16; ++j) b[k * 16 + j] = static_cast<float>((k * 5 + j) % 5 - 2);
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::fill_fragment(acc, 1.f);
  wmma::load_matrix_sync(fa, a.data(), 16);
  wmma::load_matrix_sync(fb, b.data(), 16);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c.data(), acc, 16, wmma::mem_col_major);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float want = 1.f;
      for (int k = 0; k < 8; ++k) want += a[i + k * 16] * b[k * 16 + j];
      EXPECT_EQ(c[i + j * 16], want) << i << "," << j;
    }
}

}  // namespace
