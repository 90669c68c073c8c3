// Execution contexts for the kernel simulator's fibers: where a fiber (or the scheduler)
// resumes. On x86-64 a switch saves and restores the callee-saved registers and the stack
// pointer in a few instructions; elsewhere it is ucontext's swapcontext, which also makes
// two system calls per switch for the signal mask, and a simulated kernel switches a few
// times per thread.
#pragma once

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace cnnk_sim {

struct FiberContext {
#if defined(__x86_64__)
  void* sp = nullptr;  // the saved stack pointer: the registers lie above it
#else
  ucontext_t uc;
#endif
};

// Makes `c` start `entry` (which must never return) on the stack [bottom, bottom + size).
void start_context(FiberContext& c, void* bottom, size_t size, void (*entry)());
// Saves the running context in `from` and resumes `to`.
void switch_context(FiberContext& from, FiberContext& to);

}  // namespace cnnk_sim
