#include "apps/cnn/process_clock.h"

#include <chrono>

namespace cnn::app {
namespace {

using Clock = std::chrono::steady_clock;

const Clock::time_point& start() {
  static const Clock::time_point t = Clock::now();
  return t;
}

}  // namespace

void mark_process_start() { static_cast<void>(start()); }

double seconds_since_process_start() {
  return std::chrono::duration<double>(Clock::now() - start()).count();
}

}  // namespace cnn::app
