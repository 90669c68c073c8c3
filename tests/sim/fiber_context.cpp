// See fiber_context.h.
#include "fiber_context.h"

#include <cstdint>

namespace cnnk_sim {

#if defined(__x86_64__)

// cnnk_sim_switch(&from_sp, to_sp): pushes the System V callee-saved registers and the
// SSE and x87 control words, stores the stack pointer in *from_sp, then loads to_sp and
// pops the same in reverse. `ret` continues wherever `to` last switched away, or, for a
// new context, at its entry (see start_context).
extern "C" void cnnk_sim_switch(void** from_sp, void* to_sp);
asm(R"(
  .pushsection .text
  .p2align 4
  .globl cnnk_sim_switch
  .type cnnk_sim_switch, @function
cnnk_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cnnk_sim_switch, .-cnnk_sim_switch
  .popsection
)");

void start_context(FiberContext& c, void* bottom, size_t size, void (*entry)()) {
  // From the top (16-byte aligned): a null return address for `entry`, so that it starts
  // with the stack aligned as after a call; `entry` itself, for the switch's ret; six
  // zero registers; the default control words (MXCSR 0x1f80, x87 0x037f).
  auto top = (reinterpret_cast<uintptr_t>(bottom) + size) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;
  *--sp = reinterpret_cast<void*>(entry);
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  *--sp = reinterpret_cast<void*>((uint64_t(0x037f) << 32) | 0x1f80);
  c.sp = sp;
}

void switch_context(FiberContext& from, FiberContext& to) { cnnk_sim_switch(&from.sp, to.sp); }

#else

void start_context(FiberContext& c, void* bottom, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = bottom;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}

void switch_context(FiberContext& from, FiberContext& to) { swapcontext(&from.uc, &to.uc); }

#endif

}  // namespace cnnk_sim
