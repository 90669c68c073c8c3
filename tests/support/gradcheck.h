// Helpers for the op tests: deterministic random fills, poison, central-difference
// gradient checks, and element-wise comparisons that report the worst element.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cnnk/random.h"

namespace cnn::test {

// Uniform values in [lo, hi), a pure function of (seed, index).
inline std::vector<double> random_values(size_t count, uint64_t seed, double lo = -1.0,
                                         double hi = 1.0) {
  std::vector<double> v(count);
  for (size_t i = 0; i < count; ++i)
    v[i] = lo + (hi - lo) * static_cast<double>(cnnk::uniform01(seed, i));
  return v;
}

// Values with |v| in [gap, 1) and a random sign: far from the kink of ReLU at 0.
inline std::vector<double> away_from_zero(size_t count, uint64_t seed, double gap = 0.1) {
  std::vector<double> v = random_values(count, seed, gap, 1.0);
  for (size_t i = 0; i < count; ++i)
    if (cnnk::random_bits(seed + 1, i) & 1) v[i] = -v[i];
  return v;
}

// A random permutation of (i - count / 2) * spacing: distinct values, so a max is never
// near a tie when the input moves by much less than `spacing`.
inline std::vector<double> distinct_values(size_t count, uint64_t seed, double spacing = 0.01) {
  std::vector<double> v(count);
  for (size_t i = 0; i < count; ++i)
    v[i] = (static_cast<double>(i) - static_cast<double>(count / 2)) * spacing;
  for (size_t i = count; i > 1; --i) {
    const size_t j = static_cast<size_t>(cnnk::random_bits(seed, i) % i);
    std::swap(v[i - 1], v[j]);
  }
  return v;
}

// Small integers in [-range, range]: sums and products of these are exact in float.
inline std::vector<float> small_integers(size_t count, uint64_t seed, int range = 3) {
  std::vector<float> v(count);
  const uint64_t span = static_cast<uint64_t>(2 * range + 1);
  for (size_t i = 0; i < count; ++i)
    v[i] = static_cast<float>(static_cast<int>(cnnk::random_bits(seed, i) % span) - range);
  return v;
}

template <class To, class From>
std::vector<To> cast_all(const std::vector<From>& v) {
  std::vector<To> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<To>(v[i]);
  return out;
}

template <class T>
std::vector<T> abs_all(const std::vector<T>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::abs(v[i]);
  return out;
}

// Output buffers start as NaN: an op that fails to assign an element is caught.
template <class T>
std::vector<T> poisoned(size_t count) {
  return std::vector<T>(count, std::numeric_limits<T>::quiet_NaN());
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// d loss / d x[i] by central differences; x is restored afterwards.
template <class Loss>
std::vector<double> numeric_gradient(std::vector<double>& x, Loss&& loss, double h = 1e-6) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double plus = loss();
    x[i] = saved - h;
    const double minus = loss();
    x[i] = saved;
    grad[i] = (plus - minus) / (2.0 * h);
  }
  return grad;
}

// |analytic - numeric| <= tol * max(|analytic|, |numeric|, 1) for every element; on
// failure names the worst element, as a fraction of its bound, and the first mismatches.
inline ::testing::AssertionResult gradients_match(const std::string& what,
                                                  const std::vector<double>& analytic,
                                                  const std::vector<double>& numeric,
                                                  double tol = 1e-6) {
  if (analytic.size() != numeric.size())
    return ::testing::AssertionFailure()
           << what << ": size " << analytic.size() << " vs " << numeric.size();
  double worst = 0.0;
  size_t worst_i = 0, bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < analytic.size(); ++i) {
    const double a = analytic[i], n = numeric[i];
    const double bound = tol * std::max({std::abs(a), std::abs(n), 1.0});
    const double ratio = std::abs(a - n) / bound;
    if (!(ratio <= 1.0)) {  // NaN fails too
      if (bad < 5) first << "\n  [" << i << "] analytic " << a << " numeric " << n;
      ++bad;
    }
    if (!(ratio <= worst)) {
      worst = ratio;
      worst_i = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << analytic.size() << " gradients off; worst at ["
         << worst_i << "] is " << worst << " times the bound; first:" << first.str();
}

// |actual - expected| <= bound[i] for every element (bound may be a single value).
template <class A, class E>
::testing::AssertionResult within_bounds(const std::string& what, const std::vector<A>& actual,
                                         const std::vector<E>& expected,
                                         const std::vector<double>& bound) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << what << ": size " << actual.size() << " vs " << expected.size();
  double worst = 0.0;
  size_t worst_i = 0, bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const double b = bound.size() == 1 ? bound[0] : bound[i];
    const double err = std::abs(a - e);
    if (!(err <= b)) {
      if (bad < 5) first << "\n  [" << i << "] got " << a << " expected " << e << " bound " << b;
      ++bad;
    }
    const double ratio = b > 0 ? err / b : (err > 0 ? INFINITY : 0.0);
    if (!(ratio <= worst)) {
      worst = ratio;
      worst_i = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << actual.size() << " elements off; worst at [" << worst_i
         << "] is " << worst << " times its bound; first:" << first.str();
}

// Bit-for-bit equality.
template <class A, class E>
::testing::AssertionResult all_equal(const std::string& what, const std::vector<A>& actual,
                                     const std::vector<E>& expected) {
  return within_bounds(what, actual, expected, std::vector<double>{0.0});
}

}  // namespace cnn::test
