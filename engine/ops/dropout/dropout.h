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
// Throws ConfigError unless rate is in [0, 1).
void check_dropout_rate(double rate);
// dropout_forward's work for elements [first, end) of the whole tensors, with the rate
// already checked: the CPU backend runs ranges of them on threads.
template <class T>
void dropout_forward_elements(const cnnk::DropoutGeometry& g, T rate, uint64_t seed, const T* x,
                              T* y, T* mask, int64_t first, int64_t end);
// dx = dy * mask (dx may alias dy).
template <class T>
void dropout_backward(const cnnk::DropoutGeometry& g, const T* mask, const T* dy, T* dx);
}  // namespace ref

}  // namespace cnn
