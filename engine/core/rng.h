// Seeded, platform-independent random numbers for the host (initialisation, shuffling).
// Built on the counter-based generator in cnnk/random.h: no std distributions, whose
// output differs between standard libraries.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "cnnk/random.h"

namespace cnn {

class Rng {
 public:
  explicit Rng(uint64_t seed) : seed_(cnnk::mix64(seed)) {}
  // An independent stream for (seed, a, b): e.g. (run seed, "init", parameter index).
  static Rng stream(uint64_t seed, uint64_t a, uint64_t b = 0) {
    return Rng(cnnk::mix64(seed ^ cnnk::mix64(a ^ cnnk::mix64(b + 0x51ED27ull))));
  }

  uint64_t next_u64() { return cnnk::random_bits(seed_, counter_++); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0, by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = ~uint64_t(0) - (~uint64_t(0) % n);
    uint64_t r;
    do r = next_u64();
    while (r >= limit);
    return r % n;
  }
  // Fisher-Yates.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(below(i))]);
  }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace cnn
