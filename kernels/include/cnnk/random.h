// Counter-based random numbers: the value for (seed, counter) is a pure function, so
// the CPU reference and a CUDA kernel draw identical dropout masks, in any order and
// with any number of threads.
#pragma once

#include <cstdint>

#include "cnnk/hd.h"

namespace cnnk {

// The splitmix64 finalizer: a bijective mix of 64 bits.
CNNK_HD uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

CNNK_HD uint64_t random_bits(uint64_t seed, uint64_t counter) {
  return mix64(seed ^ mix64(counter));
}

// Uniform in [0, 1) with 24 random bits: exactly representable in float.
CNNK_HD float uniform01(uint64_t seed, uint64_t counter) {
  return float(random_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace cnnk
