// Data augmentation: a random horizontal flip and a random translation with zero fill,
// per sample of a batch of NCHW images. The draws are cnnk::augment_draw (cnnk/augment.h):
// a pure function of (seed, sample), so every backend augments a batch identically.
#pragma once

#include <cstdint>

#include "cnnk/augment.h"

namespace cnn::ref {

// y = augment(x): assigns all g.size() elements of y; y must not alias x.
void augment(const cnnk::AugmentGeometry& g, uint64_t seed, const float* x, float* y);

}  // namespace cnn::ref
