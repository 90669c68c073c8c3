// Division by a divisor that is fixed for a whole launch (a filter width, a plane size) as
// one multiply-high, an add and a shift. Why: a GPU has no integer divider, and a `/` by
// a run-time int compiles to some 20 instructions (a float reciprocal, corrections, sign
// fix-ups). The implicit-GEMM gathers split reduction indices into (channel, row,
// column) every step, where that was a tenth of the work of a 4 x 4 register tile; the
// pooling kernels split every element index into (map, row, column).
//
// The method is Granlund and Montgomery's ("Division by invariant integers using
// multiplication", PLDI 1994): for a divisor d in [1, 2^31), with l = ceil(log2 d) and
// m = floor(2^32 (2^l - d) / d) + 1 (which is below 2^32), every n in [0, 2^31) has
// n / d = (mulhi(m, n) + n) >> l. The sum stays below 2^32 because mulhi(m, n) < n.
#pragma once

#include <cstdint>

#include "cnnk/hd.h"

namespace cnnk {
namespace detail {

CNNK_HD unsigned mul_high(unsigned a, unsigned b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<unsigned>((uint64_t(a) * b) >> 32);
#endif
}

class FastDivisor {
 public:
  // Divides by 1 (a placeholder for a launch that never divides).
  FastDivisor() = default;
  // d in [1, 2^31); anything below 1 divides by 1 (the callers pass plane sizes that may
  // be 0 only when nothing is divided).
  explicit FastDivisor(int d) {
    if (d < 1) d = 1;
    divisor_ = d;
    while ((uint64_t(1) << shift_) < uint64_t(d)) ++shift_;
    magic_ = static_cast<unsigned>(
        ((uint64_t(1) << 32) * ((uint64_t(1) << shift_) - uint64_t(d))) / uint64_t(d) + 1);
  }

  int divisor() const { return divisor_; }

  // n / d for n in [0, 2^31).
  CNNK_HD int div(int n) const {
    const unsigned u = static_cast<unsigned>(n);
    return static_cast<int>((mul_high(magic_, u) + u) >> shift_);
  }
  // n / d and n % d.
  CNNK_HD void divmod(int n, int& quotient, int& remainder) const {
    quotient = div(n);
    remainder = n - quotient * divisor_;
  }

 private:
  unsigned magic_ = 1;
  unsigned shift_ = 0;
  int divisor_ = 1;
};

}  // namespace detail
}  // namespace cnnk
