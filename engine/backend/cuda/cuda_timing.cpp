// Timing on the GPU: CUDA events recorded on the backend's stream measure device time,
// unaffected by how far ahead the host ran; the Nsight capture range brackets a region.
#include <cuda_profiler_api.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_check.h"
#include "engine/core/error.h"

namespace cnn::cuda {
namespace {

class EventTimeline final : public Backend::Timeline {
 public:
  explicit EventTimeline(cudaStream_t stream) : stream_(stream) {}
  ~EventTimeline() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  EventTimeline(const EventTimeline&) = delete;
  EventTimeline& operator=(const EventTimeline&) = delete;

  int mark() override {
    cudaEvent_t e = nullptr;
    CNN_CUDA(cudaEventCreate(&e));
    events_.push_back(e);
    CNN_CUDA(cudaEventRecord(e, stream_));
    return static_cast<int>(events_.size()) - 1;
  }
  double elapsed_ms(int from, int to) override {
    CNN_CHECK(from >= 0 && to >= 0 && static_cast<size_t>(std::max(from, to)) < events_.size(),
              Error, "no timeline marks {} and {} (have {})", from, to, events_.size());
    CNN_CUDA(cudaEventSynchronize(events_[static_cast<size_t>(to)]));
    float ms = 0;
    CNN_CUDA(cudaEventElapsedTime(&ms, events_[static_cast<size_t>(from)],
                                  events_[static_cast<size_t>(to)]));
    return static_cast<double>(ms);
  }

 private:
  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;
};

// A device buffer held for the length of a timing, given back even when the body throws.
class Held {
 public:
  Held(DeviceAllocator& a, size_t bytes)
      : a_(a), p_(bytes ? a.allocate(bytes, "the L2 flush buffer of a timing") : nullptr) {}
  ~Held() {
    if (p_) a_.release(p_);
  }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  void* get() const { return p_; }

 private:
  DeviceAllocator& a_;
  void* p_;
};

}  // namespace

std::unique_ptr<Backend::Timeline> CudaBackend::timeline() {
  return std::make_unique<EventTimeline>(stream_);
}

std::vector<double> CudaBackend::time_ms(const std::function<void()>& body, int warmup,
                                         int repeats) {
  CNN_CHECK(warmup >= 0 && repeats >= 1, ConfigError,
            "timing needs warmup >= 0 and repeats >= 1, got {} and {}", warmup, repeats);
  for (int i = 0; i < warmup; ++i) body();
  // Writing twice the L2's size before each repeat evicts what the last one left there.
  int l2 = 0;
  CNN_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, options_.device));
  const size_t flush_bytes = 2 * static_cast<size_t>(l2);
  Held flush(*allocator_, flush_bytes);
  EventTimeline t(stream_);
  std::vector<std::pair<int, int>> spans;
  for (int i = 0; i < repeats; ++i) {
    if (flush.get()) CNN_CUDA(cudaMemsetAsync(flush.get(), i & 0xff, flush_bytes, stream_));
    const int from = t.mark();
    body();
    spans.emplace_back(from, t.mark());
  }
  std::vector<double> ms;
  for (const auto& [from, to] : spans) ms.push_back(t.elapsed_ms(from, to));
  // The flush buffer goes back to the allocator only after the stream is done with it.
  synchronize();
  return ms;
}

void CudaBackend::profiler_start() {
  // Work queued before the range stays out of it.
  synchronize();
  CNN_CUDA(cudaProfilerStart());
}

void CudaBackend::profiler_stop() {
  synchronize();
  CNN_CUDA(cudaProfilerStop());
}

}  // namespace cnn::cuda
