// The kernel simulator's scheduler (fibers, barriers, shuffles) and its stand-in for the
// CUDA runtime calls. See include/cnnk_sim.h for what it models.
//
// One block at a time: each thread is a fiber on a stack of its own (fiber_context.h).
// The scheduler resumes every runnable fiber in thread order (ascending or descending, see
// run_block); a fiber runs until it ends or waits (at __syncthreads or in a shuffle). When
// none can run, the waits are resolved: a warp whose shuffle every named lane has reached
// goes on first, then a block barrier that every thread has reached. Nothing resolvable
// is a deadlock, reported as a launch failure, and so is a barrier that threads which
// have exited never reached.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnnk_sim_device.h"
#include "cuda_runtime_api.h"
#include "fiber_context.h"

#if defined(__SANITIZE_ADDRESS__)
#define CNNK_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CNNK_SIM_ASAN 1
#endif
#endif
#ifdef CNNK_SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace cnnk_sim {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kMaxThreads = 1024;
constexpr size_t kMaxDynamicShared = 48 * 1024;  // without cudaFuncSetAttribute's opt-in
// Kernel frames are small (a few KiB of locals at most, under ASan too: its fake stacks
// live on the heap); a guard page below each stack turns an overflow into a fault.
constexpr size_t kStackBytes = 32 * 1024;
constexpr size_t kGuardBytes = 4096;

enum class Wait { None, Block, Warp, Done };

struct Fiber {
  FiberContext context;
  Wait wait = Wait::None;
  unsigned mask = 0;  // the lanes a Warp wait names
  Coords coords;
};

// A stack with a guard page below it, mapped once and reused by later blocks.
class Stack {
 public:
  Stack() {
    void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "kernel simulator: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(p, kGuardBytes, PROT_NONE);
    base_ = static_cast<char*>(p);
  }
  ~Stack() { munmap(base_, kStackBytes + kGuardBytes); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  void* bottom() const { return base_ + kGuardBytes; }

#ifdef CNNK_SIM_ASAN
  // ASan's fake stack (detect_stack_use_after_return) of the fibers that run here, kept
  // from one to the next: made anew for each fiber, it would cost a map and an unmap.
  void* fake_stack = nullptr;
#endif

 private:
  char* base_;
};

// The block being simulated on this host thread.
struct Block {
  std::vector<Fiber> fibers;
  FiberContext scheduler;
  int current = -1;
  int alive = 0;
  const std::function<void()>* body = nullptr;
  void* dynamic_shared = nullptr;
  uint64_t slots[kMaxThreads];  // the shuffles' published values, by thread
  std::string failure;
#ifdef CNNK_SIM_ASAN
  const void* scheduler_bottom = nullptr;
  size_t scheduler_size = 0;
#endif
};

// The simulator's per-host-thread state: the block running now and the stacks.
thread_local Block* t_block = nullptr;
thread_local std::vector<std::unique_ptr<Stack>> t_stacks;

void record_error(cudaError_t error, const std::string& message) { report(error, message); }

Block& running_block() {
  if (!t_block) {
    std::fprintf(stderr, "kernel simulator: a device function ran outside a kernel launch\n");
    std::abort();
  }
  return *t_block;
}

// From a fiber back to the scheduler; returns when the scheduler resumes this fiber.
void yield_to_scheduler() {
  Block& b = running_block();
  const size_t i = static_cast<size_t>(b.current);
#ifdef CNNK_SIM_ASAN
  __sanitizer_start_switch_fiber(&t_stacks[i]->fake_stack, b.scheduler_bottom, b.scheduler_size);
#endif
  switch_context(b.fibers[i].context, b.scheduler);
#ifdef CNNK_SIM_ASAN
  __sanitizer_finish_switch_fiber(t_stacks[i]->fake_stack, &b.scheduler_bottom, &b.scheduler_size);
#endif
}

void fiber_main() {
  Block& b = running_block();
  const size_t i = static_cast<size_t>(b.current);
#ifdef CNNK_SIM_ASAN
  __sanitizer_finish_switch_fiber(t_stacks[i]->fake_stack, &b.scheduler_bottom, &b.scheduler_size);
#endif
  (*b.body)();
  b.fibers[i].wait = Wait::Done;
  --b.alive;
#ifdef CNNK_SIM_ASAN
  __sanitizer_start_switch_fiber(&t_stacks[i]->fake_stack, b.scheduler_bottom, b.scheduler_size);
#endif
  switch_context(b.fibers[i].context, b.scheduler);  // never resumed
}

void resume(Block& b, int i) {
  b.current = i;
  Fiber& f = b.fibers[static_cast<size_t>(i)];
#ifdef CNNK_SIM_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, t_stacks[static_cast<size_t>(i)]->bottom(),
                                 kStackBytes);
#endif
  switch_context(b.scheduler, f.context);
#ifdef CNNK_SIM_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  b.current = -1;
}

std::string where(const Block& b) {
  const Coords& c = b.fibers.front().coords;
  return "block (" + std::to_string(c.block.x) + "," + std::to_string(c.block.y) + "," +
         std::to_string(c.block.z) + ") of " + std::to_string(b.fibers.size()) + " threads";
}

// Lets the warps whose every named lane waits in a shuffle go on. False, with b.failure
// set, when a shuffle names a lane that has exited or does not exist.
bool release_warps(Block& b, bool& released) {
  const int threads = static_cast<int>(b.fibers.size());
  for (int w0 = 0; w0 < threads; w0 += kWarp) {
    int waiting = -1;
    for (int t = w0; t < w0 + kWarp && t < threads; ++t)
      if (b.fibers[static_cast<size_t>(t)].wait == Wait::Warp) waiting = t;
    if (waiting < 0) continue;
    const unsigned mask = b.fibers[static_cast<size_t>(waiting)].mask;
    bool all_there = true;
    for (int lane = 0; lane < kWarp; ++lane) {
      if (!(mask >> lane & 1u)) continue;
      const int t = w0 + lane;
      if (t >= threads || b.fibers[static_cast<size_t>(t)].wait == Wait::Done) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%#x", mask);
        b.failure = std::string("a shuffle with mask ") + hex + " waits for thread " +
                    std::to_string(t) + ", which " +
                    (t >= threads ? "does not exist" : "has exited") + ", in " + where(b);
        return false;
      }
      if (b.fibers[static_cast<size_t>(t)].wait != Wait::Warp) all_there = false;
    }
    if (!all_there) continue;
    for (int lane = 0; lane < kWarp; ++lane)
      if (mask >> lane & 1u) b.fibers[static_cast<size_t>(w0 + lane)].wait = Wait::None;
    released = true;
  }
  return true;
}

// Thread `i` of the block, ready to start at fiber_main on its own stack.
void prepare_fiber(Fiber& f, unsigned i, uint3 block, dim3 grid, dim3 dims) {
  f.coords =
      Coords{uint3{i % dims.x, i / dims.x % dims.y, i / (dims.x * dims.y)}, block, dims, grid};
  f.wait = Wait::None;
#ifdef CNNK_SIM_ASAN
  // A previous fiber's frames may have left redzones poisoned on this stack.
  ASAN_UNPOISON_MEMORY_REGION(t_stacks[i]->bottom(), kStackBytes);
#endif
  start_context(f.context, t_stacks[i]->bottom(), kStackBytes, fiber_main);
}

// The passes alternate between ascending and descending thread order, from one barrier
// interval to the next and from one block to the next: a thread that reads, without a
// barrier between, what a lower thread writes is caught by the descending passes, one
// that reads a higher thread's value by the ascending ones.
bool run_block(Block& b, uint3 block, dim3 grid, dim3 dims) {
  const int threads = static_cast<int>(b.fibers.size());
  for (int i = 0; i < threads; ++i)
    prepare_fiber(b.fibers[static_cast<size_t>(i)], static_cast<unsigned>(i), block, grid, dims);
  b.alive = threads;
  bool descending = ((block.z * grid.y + block.y) * grid.x + block.x) % 2 == 1;
  while (b.alive > 0) {
    for (int n = 0; n < threads; ++n) {
      const int i = descending ? threads - 1 - n : n;
      if (b.fibers[static_cast<size_t>(i)].wait == Wait::None) resume(b, i);
    }
    if (b.alive == 0) break;
    bool released = false;
    if (!release_warps(b, released)) return false;
    if (released) continue;
    int at_barrier = 0, in_shuffle = 0;
    for (const Fiber& f : b.fibers) {
      at_barrier += f.wait == Wait::Block;
      in_shuffle += f.wait == Wait::Warp;
    }
    const int exited = threads - b.alive;
    if (at_barrier == b.alive && exited == 0) {
      for (Fiber& f : b.fibers)
        if (f.wait == Wait::Block) f.wait = Wait::None;
      descending = !descending;
      continue;
    }
    if (at_barrier == b.alive) {
      // The hardware would count the exited threads as arrived, but CUDA leaves a barrier
      // in code that not every thread reaches undefined: the kernel is wrong.
      b.failure = std::to_string(at_barrier) + " threads wait at __syncthreads, which " +
                  std::to_string(exited) + " exited threads never reached, in " + where(b);
      return false;
    }
    b.failure = "deadlock in " + where(b) + ": " + std::to_string(at_barrier) +
                " threads wait at __syncthreads, " + std::to_string(in_shuffle) +
                " in a shuffle whose lanes never all arrive, " + std::to_string(threads - b.alive) +
                " have exited";
    return false;
  }
  return true;
}

}  // namespace

const Coords& coords() {
  Block& b = running_block();
  return b.fibers[static_cast<size_t>(b.current)].coords;
}

void syncthreads() {
  Block& b = running_block();
  b.fibers[static_cast<size_t>(b.current)].wait = Wait::Block;
  yield_to_scheduler();
}

uint64_t shuffle_xor_bits(unsigned mask, uint64_t mine, int lane_mask) {
  Block& b = running_block();
  const int self = b.current;
  const int w0 = self - self % kWarp, lane = self % kWarp, src = lane ^ lane_mask;
  Fiber& f = b.fibers[static_cast<size_t>(self)];
  if (!(mask >> lane & 1u) || src < 0 || src >= kWarp || !(mask >> src & 1u)) {
    std::fprintf(stderr,
                 "kernel simulator: lane %d shuffles with mask %#x and lane mask %d: the lane or "
                 "its partner is not in the mask (undefined on a GPU)\n",
                 lane, mask, lane_mask);
    std::abort();
  }
  b.slots[self] = mine;
  f.wait = Wait::Warp;
  f.mask = mask;
  yield_to_scheduler();  // every lane of the mask has published
  const uint64_t got = b.slots[w0 + src];
  f.wait = Wait::Warp;
  yield_to_scheduler();  // every lane has read: the slots may be reused
  return got;
}

void* dynamic_shared() { return running_block().dynamic_shared; }

int lane_or_none() { return t_block ? t_block->current % kWarp : -1; }

bool launch_config_valid(dim3 grid, dim3 dims, size_t dynamic_smem) {
  if (t_block) {
    record_error(cudaErrorNotSupported, "a kernel launched another (dynamic parallelism)");
    return false;
  }
  const uint64_t threads = uint64_t(dims.x) * dims.y * dims.z;
  if (threads == 0 || threads > kMaxThreads || dims.z > 64 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    record_error(cudaErrorInvalidConfiguration,
                 "invalid launch configuration: grid (" + std::to_string(grid.x) + "," +
                     std::to_string(grid.y) + "," + std::to_string(grid.z) + "), block (" +
                     std::to_string(dims.x) + "," + std::to_string(dims.y) + "," +
                     std::to_string(dims.z) + ")");
    return false;
  }
  if (dynamic_smem > kMaxDynamicShared) {
    record_error(cudaErrorInvalidValue,
                 std::to_string(dynamic_smem) +
                     " bytes of dynamic shared memory: more than 48 KiB needs an opt-in");
    return false;
  }
  return true;
}

bool launch(dim3 grid, dim3 dims, size_t dynamic_smem, const std::function<void()>& body) {
  if (!launch_config_valid(grid, dims, dynamic_smem)) return false;
  const uint64_t threads = uint64_t(dims.x) * dims.y * dims.z;
  while (t_stacks.size() < threads) t_stacks.push_back(std::make_unique<Stack>());

  auto b = std::make_unique<Block>();
  b->fibers.resize(threads);
  b->body = &body;
  std::vector<unsigned char> shared(dynamic_smem);
  b->dynamic_shared = dynamic_smem ? shared.data() : nullptr;
  t_block = b.get();
  bool ok = true;
  for (unsigned z = 0; z < grid.z && ok; ++z)
    for (unsigned y = 0; y < grid.y && ok; ++y)
      for (unsigned x = 0; x < grid.x && ok; ++x) {
        if (dynamic_smem) std::memset(shared.data(), 0xff, dynamic_smem);
        ok = run_block(*b, uint3{x, y, z}, grid, dims);
      }
  t_block = nullptr;
  if (!ok) record_error(cudaErrorLaunchFailure, b->failure);
  return ok;
}

}  // namespace cnnk_sim
