// The bias gradient of convolution and dense layers: the per-channel sum of the
// gradient at the pre-activation. The layers compute it with the activation's backward
// (Backend::bias_activation_backward), so that the GPU reads that gradient once; the
// kernels are in kernels/src/bias.cu, the reference here.
#pragma once

#include "engine/ops/activation/activation.h"

namespace cnn::ref {

// db[c] = sum over n and spatial of dy[n, c, s], assigned (an empty batch gives 0);
// double accumulation in the order n, then s.
template <class T>
void bias_backward(const ActivationGeometry& g, const T* dy, T* db);
// The same over channels [first, end) only (the CPU backend runs ranges on threads).
template <class T>
void bias_backward_channels(const ActivationGeometry& g, int64_t first, int64_t end, const T* dy,
                            T* db);

}  // namespace cnn::ref
