// The kernels' division by a launch-wide divisor (kernels/src/fast_divide.cuh),
// checked on the host against the `/` and `%` it replaces: exhaustively for small
// divisors and dividends, at the edges of its range, and at random.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/src/fast_divide.cuh"

namespace cnn {
namespace {

using cnnk::detail::FastDivisor;

constexpr int kMaxDividend = 0x7fffffff;

// The dividends around each multiple of d near n, and n itself.
std::vector<int> around(int n, int d) {
  std::vector<int> out;
  const int64_t base = int64_t(n) / d * d;
  for (int64_t m = base - 2 * int64_t(d); m <= base + 2 * int64_t(d); m += d)
    for (int64_t delta = -1; delta <= 1; ++delta) {
      const int64_t v = m + delta;
      if (v >= 0 && v <= kMaxDividend) out.push_back(static_cast<int>(v));
    }
  out.push_back(n);
  return out;
}

void expect_divides(const FastDivisor& f, int n) {
  const int d = f.divisor();
  int q = -1, r = -1;
  f.divmod(n, q, r);
  ASSERT_EQ(q, n / d) << n << " / " << d;
  ASSERT_EQ(r, n % d) << n << " % " << d;
  ASSERT_EQ(f.div(n), n / d) << n << " / " << d;
}

TEST(FastDivisor, SmallDivisorsEveryDividendToTwoToTheSixteen) {
  for (int d = 1; d <= 300; ++d) {
    const FastDivisor f(d);
    for (int n = 0; n <= 1 << 16; ++n) expect_divides(f, n);
    if (HasFatalFailure()) return;
  }
}

TEST(FastDivisor, EdgesOfTheRange) {
  std::vector<int> divisors = {1,
                               2,
                               3,
                               5,
                               7,
                               9,
                               25,
                               49,
                               196,
                               784,
                               1000,
                               65535,
                               65536,
                               65537,
                               (1 << 30) - 1,
                               1 << 30,
                               (1 << 30) + 1,
                               kMaxDividend - 1,
                               kMaxDividend};
  for (int b = 1; b < 31; ++b) {  // powers of two and their neighbours
    divisors.push_back((1 << b) - 1);
    divisors.push_back(1 << b);
    divisors.push_back((1 << b) + 1);
  }
  for (const int d : divisors) {
    const FastDivisor f(d);
    for (const int n : {0, 1, d - 1, d, kMaxDividend - 1, kMaxDividend, kMaxDividend / 2})
      for (const int v : around(n, d)) expect_divides(f, v);
    if (HasFatalFailure()) return;
  }
}

TEST(FastDivisor, RandomDivisorsAndDividends) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> any(0, kMaxDividend);
  for (int i = 0; i < 20000; ++i) {
    // Divisors spread over every magnitude, not only the large ones.
    const int bits = 1 + static_cast<int>(rng() % 31);
    const int d = std::max(1, static_cast<int>(rng() % (uint64_t(1) << bits)));
    const FastDivisor f(d);
    for (int j = 0; j < 50; ++j) expect_divides(f, any(rng));
    if (HasFatalFailure()) return;
  }
}

// The default divides by 1, and so does a divisor below 1 (a plane size of 0 in a launch
// that divides nothing).
TEST(FastDivisor, DefaultAndDegenerateDivideByOne) {
  for (const FastDivisor& f : {FastDivisor(), FastDivisor(0), FastDivisor(-5)}) {
    EXPECT_EQ(f.divisor(), 1);
    for (const int n : {0, 1, 12345, kMaxDividend}) EXPECT_EQ(f.div(n), n);
  }
}

}  // namespace
}  // namespace cnn
