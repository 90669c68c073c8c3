// The memory planner on its own: buffers live at the same time never overlap, offsets are
// aligned, reuse happens where lifetimes allow it, and the arena stays within the sum of
// the buffers it replaces.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/graph/memory_plan.h"

namespace cnn {
namespace {

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Checks every promise of plan_memory for one set of requests; returns a description of
// the first broken one, or "".
std::string broken_promise(const std::vector<BufferRequest>& req, const MemoryPlan& plan,
                           size_t alignment) {
  if (plan.offsets.size() != req.size()) return "one offset per request";
  size_t naive = 0, aligned_sum = 0, extent = 0;
  int last_step = 0;
  for (size_t i = 0; i < req.size(); ++i) {
    naive += req[i].size;
    aligned_sum += align_up(req[i].size, alignment);
    last_step = std::max(last_step, req[i].last_use);
    if (plan.offsets[i] % alignment != 0) return req[i].name + " is misaligned";
    if (req[i].size > 0) extent = std::max(extent, plan.offsets[i] + req[i].size);
  }
  if (plan.naive != naive) return "naive is not the sum of the sizes";
  if (plan.arena < extent) return "a buffer ends past the arena";
  if (plan.arena > aligned_sum) return "the arena exceeds the buffers laid end to end";
  for (size_t i = 0; i < req.size(); ++i)
    for (size_t j = i + 1; j < req.size(); ++j) {
      const BufferRequest &a = req[i], &b = req[j];
      const bool live_together = a.first_use <= b.last_use && b.first_use <= a.last_use;
      const bool overlap = a.size > 0 && b.size > 0 && plan.offsets[i] < plan.offsets[j] + b.size &&
                           plan.offsets[j] < plan.offsets[i] + a.size;
      if (live_together && overlap) return a.name + " overlaps " + b.name + " while both live";
    }
  // No plan beats the most memory live at one step.
  for (int step = 0; step <= last_step; ++step) {
    size_t live = 0;
    for (const BufferRequest& r : req)
      if (r.first_use <= step && step <= r.last_use) live += r.size;
    if (plan.arena < live) return "the arena is smaller than what is live at one step";
  }
  return "";
}

TEST(MemoryPlan, RandomRequestsNeverOverlapWhileBothLive) {
  Rng rng(20240611);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t alignment = trial % 3 == 0 ? 1 : (trial % 3 == 1 ? 16 : kPlanAlignment);
    const int n = 1 + static_cast<int>(rng.below(60));
    std::vector<BufferRequest> req;
    for (int i = 0; i < n; ++i) {
      BufferRequest r;
      r.name = "b" + std::to_string(i);
      // Mostly sizes of a few vectors, some empty, some large: gaps of every kind.
      r.size = rng.below(10) == 0 ? 0 : static_cast<size_t>(rng.below(rng.below(2) ? 5000 : 70));
      r.first_use = static_cast<int>(rng.below(40));
      r.last_use = r.first_use + static_cast<int>(rng.below(rng.below(4) == 0 ? 40 : 6));
      req.push_back(r);
    }
    const MemoryPlan plan = plan_memory(req, alignment);
    ASSERT_EQ(broken_promise(req, plan, alignment), "") << "trial " << trial;
    // A plan is a pure function of its requests.
    EXPECT_EQ(plan_memory(req, alignment).offsets, plan.offsets);
  }
}

TEST(MemoryPlan, AChainReusesTwoBuffers) {
  // Each buffer is written at step i and read at step i + 1, as gradients flow back through
  // a chain of layers: two buffers' worth of memory suffices, whatever the chain's length.
  std::vector<BufferRequest> req;
  for (int i = 0; i < 12; ++i) req.push_back({"g" + std::to_string(i), 1000, i, i + 1});
  const MemoryPlan plan = plan_memory(req);
  ASSERT_EQ(broken_promise(req, plan, kPlanAlignment), "");
  EXPECT_EQ(plan.naive, 12000u);
  EXPECT_EQ(plan.arena, align_up(1000, kPlanAlignment) + 1000);
}

TEST(MemoryPlan, DisjointLifetimesShareOneOffset) {
  const std::vector<BufferRequest> req = {{"a", 300, 0, 1}, {"b", 500, 2, 3}, {"c", 100, 4, 4}};
  const MemoryPlan plan = plan_memory(req);
  EXPECT_EQ(plan.offsets, (std::vector<size_t>{0, 0, 0}));
  EXPECT_EQ(plan.arena, 500u);
  EXPECT_EQ(plan.naive, 900u);
}

TEST(MemoryPlan, ASmallBufferFillsAGapBetweenTwoLargeOnes) {
  // a and c are live throughout with a short b between them in memory at first; d comes
  // after b and fits in b's place instead of growing the arena.
  const std::vector<BufferRequest> req = {
      {"a", 1024, 0, 9}, {"b", 512, 0, 2}, {"c", 1024, 0, 9}, {"d", 256, 5, 9}};
  const MemoryPlan plan = plan_memory(req);
  ASSERT_EQ(broken_promise(req, plan, kPlanAlignment), "");
  EXPECT_EQ(plan.arena, 2048u + 512u);
}

TEST(MemoryPlan, OffsetsAreAlignedForVectorLoads) {
  const std::vector<BufferRequest> req = {{"a", 3, 0, 5}, {"b", 65, 0, 5}, {"c", 1, 0, 5}};
  const MemoryPlan plan = plan_memory(req);
  for (size_t off : plan.offsets) EXPECT_EQ(off % 64, 0u) << off;
  EXPECT_EQ(kPlanAlignment * sizeof(float), 256u);  // what cudaMalloc guarantees
}

TEST(MemoryPlan, EmptyInputsAndBadLifetimes) {
  const MemoryPlan none = plan_memory({});
  EXPECT_EQ(none.arena, 0u);
  EXPECT_TRUE(none.offsets.empty());
  EXPECT_THROW(plan_memory({{"backwards", 10, 3, 2}}), Error);
  EXPECT_THROW(plan_memory({{"a", 10, 0, 1}}, 0), Error);
}

}  // namespace
}  // namespace cnn
