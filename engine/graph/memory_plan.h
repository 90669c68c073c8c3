// Static memory planning: buffers whose lifetimes never meet share storage, carved from
// one arena. The executor plans its activation and gradient buffers once, when it is
// built, so a training step never allocates, and peak memory is what is live at once
// rather than the sum of every buffer.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cnn {

// One buffer of a linear schedule: `size` elements, read or written from step first_use
// through step last_use (both inclusive). Two buffers whose ranges share a step may not
// overlap in memory; otherwise they may.
struct BufferRequest {
  std::string name;  // for messages and reports
  size_t size = 0;   // elements
  int first_use = 0;
  int last_use = 0;
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // per request, in elements from the arena's start
  size_t arena = 0;             // elements the arena needs
  size_t naive = 0;             // the sum of the sizes: one allocation per buffer
};

// Every offset is a multiple of `alignment` elements (64 floats = 256 bytes, what CUDA
// allocations guarantee and vectorized loads like), relative to the arena's start.
constexpr size_t kPlanAlignment = 64;

// Assigns offsets so that no two buffers with intersecting lifetimes overlap. Throws
// cnn::Error on an empty lifetime (first_use > last_use) or a zero alignment.
MemoryPlan plan_memory(const std::vector<BufferRequest>& requests,
                       size_t alignment = kPlanAlignment);

}  // namespace cnn
