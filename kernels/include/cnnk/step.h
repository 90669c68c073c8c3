// What changes from one training step to the next, readable at run time.
//
// A training step captured once into a CUDA graph replays the same launches with the
// same arguments. The few values that differ per step (the batch's sample rows, the step
// count that seeds dropout and augmentation, the learning rate and momentum) therefore travel in
// device memory: the host writes one StepScalars before each replay, in stream order,
// and the launches carry Live values that point at its fields. Without a graph (the CPU,
// tests, debugging) a Live holds a plain value instead, and both read the same way.
#pragma once

#include <cstdint>

#include "cnnk/hd.h"
#include "cnnk/random.h"

namespace cnnk {

// A value known at launch (`at` null) or read from memory when the kernel runs.
template <class T>
struct Live {
  T value{};
  const T* at = nullptr;
  Live() = default;
  CNNK_HD Live(T v) : value(v) {}  // NOLINT: a plain value converts implicitly
  CNNK_HD Live(T v, const T* where) : value(v), at(where) {}
  CNNK_HD T get() const { return at ? *at : value; }
};

// The per-step block the host writes before each step (see the top of this file).
struct StepScalars {
  const int32_t* rows = nullptr;  // the batch's sample indices (into the epoch's order)
  int64_t iteration = 0;          // optimizer steps taken before this one
  float rate = 0.0f;              // the update's step size: lr, or Adam's bias-corrected one
  float momentum = 0.0f;          // SGD's momentum or Adam's beta1 (one-cycle varies it)
};

// A seed that changes every step: mix(base ^ mix(step * golden ^ salt)). Dropout salts it
// with the layer's name, augmentation with a constant, so no two uses draw alike.
struct StepSeed {
  uint64_t base = 0, salt = 0;
  Live<int64_t> step;
  CNNK_HD uint64_t value() const {
    return mix64(base ^ mix64(static_cast<uint64_t>(step.get()) * 0x9E3779B97F4A7C15ull ^ salt));
  }
};

}  // namespace cnnk
