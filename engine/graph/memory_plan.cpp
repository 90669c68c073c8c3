#include "engine/graph/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "engine/core/error.h"

namespace cnn {
namespace {

size_t align_up(size_t n, size_t alignment) { return (n + alignment - 1) / alignment * alignment; }

bool lifetimes_meet(const BufferRequest& a, const BufferRequest& b) {
  return a.first_use <= b.last_use && b.first_use <= a.last_use;
}

// Places the buffers in `order`, each at the lowest aligned offset where it overlaps no
// already placed buffer whose lifetime meets its own (first fit over the gaps between
// them). Returns the offsets and sets *arena to the extent used.
std::vector<size_t> place(const std::vector<BufferRequest>& requests,
                          const std::vector<size_t>& order, size_t alignment, size_t* arena) {
  std::vector<size_t> offsets(requests.size(), 0);
  std::vector<size_t> placed;  // indices of requests placed so far
  std::vector<size_t> conflicts;
  *arena = 0;
  for (size_t i : order) {
    const BufferRequest& r = requests[i];
    if (r.size == 0) continue;  // occupies nothing: offset 0 is as good as any
    conflicts.clear();
    for (size_t p : placed)
      if (lifetimes_meet(r, requests[p])) conflicts.push_back(p);
    std::sort(conflicts.begin(), conflicts.end(), [&](size_t a, size_t b) {
      return offsets[a] != offsets[b] ? offsets[a] < offsets[b] : a < b;
    });
    size_t at = 0;
    for (size_t p : conflicts) {
      if (offsets[p] >= at + r.size) break;  // the gap before p holds r
      at = std::max(at, align_up(offsets[p] + requests[p].size, alignment));
    }
    offsets[i] = at;
    placed.push_back(i);
    *arena = std::max(*arena, at + r.size);
  }
  return offsets;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, size_t alignment) {
  CNN_CHECK(alignment > 0, Error, "memory plan alignment must be positive");
  for (const BufferRequest& r : requests)
    CNN_CHECK(r.first_use <= r.last_use, Error, "buffer '{}' is used from step {} to step {}",
              r.name, r.first_use, r.last_use);
  MemoryPlan plan;
  for (const BufferRequest& r : requests) plan.naive += r.size;

  // Optimal placement is NP-hard (dynamic storage allocation), so, as inference engines
  // do, place greedily and try two orders, keeping the smaller arena; planning happens once
  // per executor, so the second try costs nothing that matters.
  //  - Largest first: the big buffers settle at low offsets and the small ones fill the
  //    gaps between them, instead of a small buffer splitting a gap a big one needed.
  //  - Longest-lived first: buffers alive for the whole schedule (a training step's
  //    activations) stack at the bottom, and the short-lived ones (gradients) reuse the
  //    space above them as they come and go.
  // Ties fall back to the request order, so a plan is a pure function of its requests.
  std::vector<size_t> by_size(requests.size());
  std::iota(by_size.begin(), by_size.end(), size_t{0});
  std::vector<size_t> by_life = by_size;
  const auto life = [&](size_t i) { return requests[i].last_use - requests[i].first_use; };
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](size_t a, size_t b) { return requests[a].size > requests[b].size; });
  std::stable_sort(by_life.begin(), by_life.end(), [&](size_t a, size_t b) {
    if (life(a) != life(b)) return life(a) > life(b);
    return requests[a].size > requests[b].size;
  });
  size_t arena_size = 0, arena_life = 0;
  std::vector<size_t> offsets_size = place(requests, by_size, alignment, &arena_size);
  std::vector<size_t> offsets_life = place(requests, by_life, alignment, &arena_life);
  if (arena_life < arena_size) {
    plan.offsets = std::move(offsets_life);
    plan.arena = arena_life;
  } else {
    plan.offsets = std::move(offsets_size);
    plan.arena = arena_size;
  }
  return plan;
}

}  // namespace cnn
