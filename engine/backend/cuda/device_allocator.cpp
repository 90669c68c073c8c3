#include "engine/backend/cuda/device_allocator.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "engine/backend/cuda/cuda_check.h"
#include "engine/core/error.h"

namespace cnn::cuda {
namespace {

std::string mib(size_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

}  // namespace

DeviceAllocator::DeviceAllocator(int device) : device_(device) {}

DeviceAllocator::~DeviceAllocator() {
  // Blocks still live belong to tensors that outlive the allocator only by a bug; the
  // driver reclaims them with the context. Cached ones are freed here.
  for (void* ptr : after_graphs_) free_.emplace(0, ptr);
  free_cache();
}

size_t DeviceAllocator::round_up(size_t bytes) {
  // Small blocks in 512-byte steps, large ones in 2 MiB steps: few distinct sizes, so
  // a block freed by one step fits the same request in the next.
  constexpr size_t kSmall = 512, kLarge = 2u << 20;
  if (bytes == 0) bytes = 1;
  const size_t step = bytes < kLarge ? kSmall : kLarge;
  return (bytes + step - 1) / step * step;
}

void* DeviceAllocator::allocate(size_t bytes, const std::string& what) {
  const size_t size = round_up(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!forbidden_.empty())
    throw DeviceError(
        fmt::format("{} of device memory asked for {} during {}: every buffer of a "
                    "captured step must exist before the capture",
                    mib(size), what, forbidden_));
  void* ptr = nullptr;
  auto it = free_.find(size);
  if (it != free_.end()) {
    ptr = it->second;
    free_.erase(it);
    stats_.cached -= size;
  } else {
    CNN_CUDA(cudaSetDevice(device_));
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      free_cache();  // give the cache back and try once more
      err = cudaMalloc(&ptr, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      throw OutOfDeviceMemory(
          fmt::format("out of GPU memory allocating {} for {}: {} free of {}, {} held by this run; "
                      "reduce --batch-size (activations grow with it) or free the GPU",
                      mib(size), what, mib(free_bytes), mib(total), mib(stats_.in_use)));
    }
    CNN_CUDA(err);
    ++stats_.device_mallocs;
  }
  live_[ptr] = size;
  stats_.in_use += size;
  if (stats_.in_use > stats_.peak) stats_.peak = stats_.in_use;
  return ptr;
}

void DeviceAllocator::release(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return;
  stats_.in_use -= it->second;
  stats_.cached += it->second;
  free_.emplace(it->second, ptr);
  live_.erase(it);
}

void DeviceAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cache();
}

// A cached block was released when the host dropped it, which may be before the kernels
// queued on it have run (safe in the cache: its next user queues behind them on the same
// stream). Before it goes back to the driver, the device finishes them: cudaFree is not
// documented to wait for them.
void DeviceAllocator::free_cache() {
  if (free_.empty()) return;
  cudaSetDevice(device_);
  cudaDeviceSynchronize();
  for (auto& [size, ptr] : free_) cudaFree(ptr);
  free_.clear();
  stats_.cached = 0;
}

void DeviceAllocator::forbid_allocation(const std::string& why) {
  std::lock_guard<std::mutex> lock(mutex_);
  forbidden_ = why.empty() ? "a forbidden section" : why;
}

void DeviceAllocator::allow_allocation() {
  std::lock_guard<std::mutex> lock(mutex_);
  forbidden_.clear();
}

void DeviceAllocator::release_after_graphs(void* ptr) {
  if (!ptr) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (graphs_ > 0) {
      after_graphs_.push_back(ptr);
      return;
    }
  }
  release(ptr);
}

void DeviceAllocator::graph_created() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++graphs_;
}

void DeviceAllocator::graph_destroyed() {
  std::vector<void*> held;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--graphs_ > 0) return;
    held.swap(after_graphs_);
  }
  for (void* ptr : held) release(ptr);
}

DeviceAllocator::Stats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace cnn::cuda
