// The simulated device's runtime (tests/sim/sim_device.cpp): what a capture records and
// forbids, copies held to their direction, the memory registry and its bound. These are
// the rules that make the CUDA backend's host code fail here where it would on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnk_sim_device.h"
#include "kernels/src/launch_util.cuh"
#include "tests/kernels/kernel_test_util.h"

namespace {

using cnnk::detail::launch;
using DeviceBuffer = cnn::test::DeviceBuffer<float>;

__global__ void add_kernel(float* y, int n, float value) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] += value;
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { EXPECT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess); }
  ~Stream() { EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

TEST(SimDevice, NewMemoryIsNanAndCopiesRoundTrip) {
  DeviceBuffer d(5);
  for (float v : d.download()) EXPECT_TRUE(std::isnan(v));
  const std::vector<float> h = {1, 2, 3, 4, 5};
  ASSERT_EQ(cudaMemcpy(d.get(), h.data(), sizeof(float) * 5, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(d.download(), h);
}

TEST(SimDevice, CopiesWhosePointersContradictTheirDirectionAreRefused) {
  DeviceBuffer d(4);
  std::vector<float> h(4, 0.0f);
  const size_t bytes = 4 * sizeof(float);
  EXPECT_EQ(cudaMemcpy(h.data(), d.get(), bytes, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d.get(), h.data(), bytes, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d.get(), h.data(), bytes, cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
  // One element past the block is not the device's either.
  EXPECT_EQ(cudaMemcpy(d.get(), h.data(), bytes + 4, cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(SimDevice, FreeingTwiceOrWhatMallocDidNotGiveIsRefused) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 64), cudaSuccess);
  EXPECT_TRUE(cnnk_sim::is_device_memory(p, 64));
  EXPECT_FALSE(cnnk_sim::is_device_memory(p, 65));
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_FALSE(cnnk_sim::is_device_memory(p, 1));
  EXPECT_EQ(cudaFree(p), cudaErrorInvalidValue);
  int on_host = 0;
  EXPECT_EQ(cudaFree(&on_host), cudaErrorInvalidValue);
  cudaGetLastError();
}

TEST(SimDevice, TheDeviceRunsOutOfMemoryAtItsBound) {
  const size_t before = cnnk_sim::device_memory_in_use();
  cnnk_sim::set_device_memory(before + 1000);
  void* a = nullptr;
  void* b = nullptr;
  EXPECT_EQ(cudaMalloc(&a, 600), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&b, 600), cudaErrorMemoryAllocation);
  EXPECT_EQ(b, nullptr);
  size_t free_bytes = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(free_bytes, 400u);
  EXPECT_EQ(cudaFree(a), cudaSuccess);
  cnnk_sim::set_device_memory(size_t(16) << 30);
  cudaGetLastError();
}

// A captured launch keeps the arguments it was captured with and runs at each replay, not
// at capture.
TEST(SimDevice, ACaptureRecordsAndEachReplayRuns) {
  Stream s;
  DeviceBuffer d(3);
  ASSERT_EQ(cudaMemsetAsync(d.get(), 0, 3 * sizeof(float), s.s), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(s.s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  float value = 2.0f;
  launch(add_kernel, dim3(1), dim3(32), 0, s.s, d.get(), 3, value);
  value = 100.0f;  // too late: the node holds 2
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s.s, &graph), cudaSuccess);
  EXPECT_EQ(d.download(), std::vector<float>(3, 0.0f));  // nothing ran yet
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s.s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s.s), cudaSuccess);
  EXPECT_EQ(d.download(), std::vector<float>(3, 4.0f));
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
}

// A captured graph lists its nodes by type, in the order they were recorded.
TEST(SimDevice, AGraphListsItsNodesByType) {
  Stream s;
  DeviceBuffer a(4), b(4);
  ASSERT_EQ(cudaStreamBeginCapture(s.s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(a.get(), 0, 4 * sizeof(float), s.s), cudaSuccess);
  launch(add_kernel, dim3(1), dim3(32), 0, s.s, a.get(), 4, 1.0f);
  ASSERT_EQ(cudaMemcpyAsync(b.get(), a.get(), 4 * sizeof(float), cudaMemcpyDeviceToDevice, s.s),
            cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s.s, &graph), cudaSuccess);
  size_t count = 0;
  ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &count), cudaSuccess);
  ASSERT_EQ(count, 3u);
  std::vector<cudaGraphNode_t> nodes(count);
  ASSERT_EQ(cudaGraphGetNodes(graph, nodes.data(), &count), cudaSuccess);
  std::vector<cudaGraphNodeType> types;
  for (cudaGraphNode_t n : nodes) {
    cudaGraphNodeType t = cudaGraphNodeTypeEmpty;
    ASSERT_EQ(cudaGraphNodeGetType(n, &t), cudaSuccess);
    types.push_back(t);
  }
  EXPECT_EQ(types, (std::vector<cudaGraphNodeType>{cudaGraphNodeTypeMemset, cudaGraphNodeTypeKernel,
                                                   cudaGraphNodeTypeMemcpy}));
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
}

// What a thread-local capture forbids on its own thread: each call fails, and the capture
// ends invalidated.
TEST(SimDevice, ACaptureForbidsAllocationSynchronizationAndHostCopies) {
  Stream s;
  DeviceBuffer d(4);
  std::vector<float> h(4, 1.0f);
  const std::vector<std::function<cudaError_t()>> forbidden = {
      [] {
        void* p = nullptr;
        return cudaMalloc(&p, 16);
      },
      [&] { return cudaStreamSynchronize(s.s); },
      [] { return cudaDeviceSynchronize(); },
      [&] { return cudaMemcpy(d.get(), h.data(), 16, cudaMemcpyHostToDevice); },
      [&] { return cudaMemcpyAsync(d.get(), h.data(), 16, cudaMemcpyHostToDevice, s.s); },
      [&] { return cudaMemcpyAsync(h.data(), d.get(), 16, cudaMemcpyDeviceToHost, s.s); },
  };
  for (size_t i = 0; i < forbidden.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(cudaStreamBeginCapture(s.s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    EXPECT_EQ(forbidden[i](), cudaErrorStreamCaptureUnsupported);
    // Later work on the stream is refused too.
    EXPECT_EQ(cudaMemsetAsync(d.get(), 0, 16, s.s), cudaErrorStreamCaptureInvalidated);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(s.s, &graph), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(graph, nullptr);
    cudaGetLastError();
  }
  // A copy within the device, and synchronizing another stream, are allowed.
  Stream other;
  ASSERT_EQ(cudaStreamBeginCapture(s.s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(d.get(), d.get() + 2, 8, cudaMemcpyDeviceToDevice, s.s), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(other.s), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s.s, &graph), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
}

TEST(SimDevice, EnqueuedWorkRunsAtOnceOutsideACaptureAndAtReplayInside) {
  Stream s;
  int runs = 0;
  ASSERT_EQ(cnnk_sim::enqueue(s.s, "count", [&runs] { ++runs; }), cudaSuccess);
  EXPECT_EQ(runs, 1);
  ASSERT_EQ(cudaStreamBeginCapture(s.s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cnnk_sim::enqueue(s.s, "count", [&runs] { ++runs; }), cudaSuccess);
  EXPECT_EQ(runs, 1);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s.s, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphDestroy(graph);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cudaGraphLaunch(exec, s.s), cudaSuccess);
  EXPECT_EQ(runs, 4);
  cudaGraphExecDestroy(exec);
}

// A kernel that fails at replay fails the graph launch.
__global__ void stuck_kernel() {
  if (threadIdx.x < 16) __syncthreads();
}

TEST(SimDevice, AFailingNodeFailsTheGraphLaunch) {
  Stream s;
  ASSERT_EQ(cudaStreamBeginCapture(s.s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  launch(stuck_kernel, dim3(1), dim3(32), 0, s.s);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);  // the configuration was fine
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s.s, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphDestroy(graph);
  EXPECT_EQ(cudaGraphLaunch(exec, s.s), cudaErrorLaunchFailure);
  cudaGraphExecDestroy(exec);
  cudaGetLastError();
}

TEST(SimDevice, EventsMeasureTheWorkBetweenThem) {
  Stream s;
  cudaEvent_t a = nullptr, b = nullptr;
  ASSERT_EQ(cudaEventCreate(&a), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&b), cudaSuccess);
  float ms = -1;
  EXPECT_EQ(cudaEventElapsedTime(&ms, a, b), cudaErrorInvalidResourceHandle);  // not recorded
  // Nothing between two records: (next to) no time. A 256 MiB memset between them: the
  // time it took, more than the empty pair by far.
  ASSERT_EQ(cudaEventRecord(a, s.s), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(b, s.s), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(b), cudaSuccess);
  ASSERT_EQ(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  const float empty = ms;
  void* big = nullptr;
  const size_t bytes = size_t(256) << 20;
  ASSERT_EQ(cudaMalloc(&big, bytes), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(a, s.s), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(big, 1, bytes, s.s), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(b, s.s), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(b), cudaSuccess);
  ASSERT_EQ(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
  EXPECT_GT(ms, 1.0f);  // writing 256 MiB takes the host well over a millisecond
  EXPECT_GT(ms, empty);
  cudaFree(big);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGetLastError();
}

}  // namespace
