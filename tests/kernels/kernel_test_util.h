// Helpers for the kernel-versus-reference suites: GPU presence (skip with a reason when
// there is none), RAII device buffers, upload/download, checked CUDA calls, and the
// reduction-length tolerance. The element-wise comparisons are in tests/support/gradcheck.h,
// included here.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/gradcheck.h"

namespace cnn::test {

// Why no GPU can run the kernels here, or "" when one can. Asked once; the sticky error
// a failed query leaves is cleared.
inline const std::string& gpu_absent_reason() {
  static const std::string reason = [] {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      return std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(err) +
             ")";
    }
    if (count == 0) return std::string("no CUDA device");
    return std::string();
  }();
  return reason;
}
inline bool gpu_present() { return gpu_absent_reason().empty(); }

// First statement of every test that touches the device.
#define CNN_REQUIRE_GPU()                                                              \
  do {                                                                                 \
    if (!::cnn::test::gpu_present()) GTEST_SKIP() << ::cnn::test::gpu_absent_reason(); \
  } while (0)

// In a test of what only real concurrency could break (run-to-run determinism): the kernel
// simulator (tests/sim) has one fixed schedule, so such a test cannot fail there.
#if defined(CNNK_SIM)
#define CNN_SKIP_IN_SIMULATOR() \
  GTEST_SKIP() << "the kernel simulator's schedule is fixed: repeats agree by construction"
#else
#define CNN_SKIP_IN_SIMULATOR() \
  do {                          \
  } while (0)
#endif

// A CUDA call that must succeed; fails the test (fatally) with the call and message.
#define CNN_CUDA_OK(call)                                                                        \
  do {                                                                                           \
    const cudaError_t cnn_cuda_err_ = (call);                                                    \
    ASSERT_EQ(cnn_cuda_err_, cudaSuccess) << #call << ": " << cudaGetErrorString(cnn_cuda_err_); \
  } while (0)

// Owns `count` elements of device memory. Move-only; a failed allocation (or the failed
// upload of the constructor from a host vector) leaves ok() false: tests assert on it.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    if (cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)) != cudaSuccess) {
      (void)cudaGetLastError();
      ptr_ = nullptr;
      count_ = 0;
      failed_ = true;
    }
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (ok() && upload(host) != cudaSuccess) failed_ = true;
  }
  ~DeviceBuffer() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    DeviceBuffer tmp(std::move(o));
    swap(tmp);
    return *this;
  }

  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  bool ok() const { return !failed_; }

  // Copies host -> device (sizes must match); returns the status.
  cudaError_t upload(const std::vector<T>& host) {
    if (host.size() != count_) return cudaErrorInvalidValue;
    if (count_ == 0) return cudaSuccess;
    return cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice);
  }
  // Synchronous device -> host copy of the whole buffer; on error returns an empty vector.
  std::vector<T> download() const {
    std::vector<T> host(count_);
    if (count_ == 0) return host;
    if (cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost) != cudaSuccess) return {};
    return host;
  }
  // Every byte set to `byte` (0xFF gives NaN floats: a poison for "was it assigned?").
  cudaError_t fill_bytes(int byte) {
    return count_ == 0 ? cudaSuccess : cudaMemset(ptr_, byte, bytes());
  }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    std::swap(failed_, o.failed_);
  }
  T* ptr_ = nullptr;
  size_t count_ = 0;
  bool failed_ = false;
};

// Waits for the device and returns the first error, launch or asynchronous.
inline cudaError_t sync_status() {
  const cudaError_t launch = cudaGetLastError();
  const cudaError_t sync = cudaDeviceSynchronize();
  return launch != cudaSuccess ? launch : sync;
}

// Bounds for float32 results of sums of `length` terms, against an exact (double)
// reference: atol + rtol * sqrt(length) * scale[i], where scale[i] is the sum of |terms|
// of element i (the reference run on absolute values gives it). Float rounding error
// grows like sqrt(length) * unit roundoff * sum|terms| (the probabilistic form of the
// classical gamma_n bound); rtol = 4 * 2^-23 = 8 unit roundoffs leaves a wide margin.
inline std::vector<double> reduction_bounds(const std::vector<double>& scale, double length,
                                            double rtol = 4.0 / 8388608.0, double atol = 1e-6) {
  std::vector<double> b(scale.size());
  const double grow = std::sqrt(std::max(length, 1.0));
  for (size_t i = 0; i < scale.size(); ++i) b[i] = atol + rtol * grow * std::abs(scale[i]);
  return b;
}

// Bounds for TF32 tensor-core results (inputs rounded to 10 mantissa bits, products and
// sums in FP32). Rounding each operand to nearest moves it by at most u = 2^-11 of
// itself, so each product by at most 2u + u^2 < 2^-9.9 of itself: over the sum, at most
// 2^-9 * sum|terms|, however long the reduction (a deterministic bound, not a
// probabilistic one). The FP32 accumulation adds the bound of reduction_bounds, taken 4x
// wider because tensor cores need not round their internal additions to nearest.
inline std::vector<double> tf32_reduction_bounds(const std::vector<double>& scale, double length,
                                                 double atol = 1e-6) {
  std::vector<double> b = reduction_bounds(scale, length, 4 * (4.0 / 8388608.0), 0.0);
  for (size_t i = 0; i < b.size(); ++i) b[i] += atol + std::ldexp(1.0, -9) * std::abs(scale[i]);
  return b;
}

// The largest |actual - expected| / bound[i] (bound may be a single value) and where:
// how close a passing comparison came to its tolerance.
template <class A, class E>
std::pair<double, size_t> worst_fraction(const std::vector<A>& actual,
                                         const std::vector<E>& expected,
                                         const std::vector<double>& bound) {
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i) {
    const double err = std::abs(static_cast<double>(actual[i]) - static_cast<double>(expected[i]));
    const double b = bound.size() == 1 ? bound[0] : bound[i];
    const double ratio = b > 0 ? err / b : (err > 0 ? INFINITY : 0.0);
    if (!(ratio <= worst)) {  // NaN counts as worst
      worst = ratio;
      at = i;
    }
  }
  return {worst, at};
}

// Checks |actual - expected| <= bound elementwise (within_bounds of gradcheck.h, which
// reports the first mismatches) and prints the worst element as a fraction of its bound
// either way, so a passing run shows its margin.
template <class A, class E>
void expect_within(const std::string& what, const std::vector<A>& actual,
                   const std::vector<E>& expected, const std::vector<double>& bound) {
  const std::pair<double, size_t> w = worst_fraction(actual, expected, bound);
  std::printf("  %-28s worst %.3g of its bound at [%zu] of %zu\n", what.c_str(), w.first, w.second,
              actual.size());
  EXPECT_TRUE(within_bounds(what, actual, expected, bound));
}

}  // namespace cnn::test
