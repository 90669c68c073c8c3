// Dropout and SpatialDropout2D, inverted as Keras: kept values are scaled by
// 1 / (1 - rate) in training; inference is the identity (the layer skips the op).
// Keep/drop decisions are cnnk::uniform01(seed, index) >= rate, where index is the
// element (or, for spatial dropout, the n * c channel) index, so any backend draws the
// same mask for the same seed.
#pragma once

#include <cstdint>

#include "cnnk/geometry.h"

namespace cnn {

namespace ref {
// y = x * mask; mask (size g.size()) receives 0 or 1 / (1 - rate). rate in [0, 1).
template <class T>
void dropout_forward(const cnnk::DropoutGeometry& g, T rate, uint64_t seed, const T* x, T* y,
                     T* mask);
// dx = dy * mask (dx may alias dy).
template <class T>
void dropout_backward(const cnnk::DropoutGeometry& g, const T* mask, const T* dy, T* dx);
}  // namespace ref

}  // namespace cnn
