// The host-clock timeline and timer every backend starts from; the CUDA backend replaces
// both with events on its stream (cuda/cuda_timing.cpp).
#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/core/error.h"

namespace cnn {
namespace {

using Clock = std::chrono::steady_clock;

// Each mark waits for the backend's queued work first, so a span covers the work issued
// inside it (on the CPU, synchronize returns at once: the work is already done).
class HostTimeline final : public Backend::Timeline {
 public:
  explicit HostTimeline(Backend& backend) : backend_(backend) {}
  int mark() override {
    backend_.synchronize();
    marks_.push_back(Clock::now());
    return static_cast<int>(marks_.size()) - 1;
  }
  double elapsed_ms(int from, int to) override {
    CNN_CHECK(from >= 0 && to >= 0 && static_cast<size_t>(std::max(from, to)) < marks_.size(),
              Error, "no timeline marks {} and {} (have {})", from, to, marks_.size());
    return std::chrono::duration<double, std::milli>(marks_[static_cast<size_t>(to)] -
                                                     marks_[static_cast<size_t>(from)])
        .count();
  }

 private:
  Backend& backend_;
  std::vector<Clock::time_point> marks_;
};

}  // namespace

std::unique_ptr<Backend::Timeline> Backend::timeline() {
  return std::make_unique<HostTimeline>(*this);
}

std::vector<double> Backend::time_ms(const std::function<void()>& body, int warmup, int repeats) {
  CNN_CHECK(warmup >= 0 && repeats >= 1, ConfigError,
            "timing needs warmup >= 0 and repeats >= 1, got {} and {}", warmup, repeats);
  for (int i = 0; i < warmup; ++i) body();
  const std::unique_ptr<Timeline> t = timeline();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const int from = t->mark();
    body();
    ms.push_back(t->elapsed_ms(from, t->mark()));
  }
  return ms;
}

}  // namespace cnn
