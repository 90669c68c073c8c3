// BatchNormalization over the channel axis of NCHW (or the features of [N, C]).
// Keras defaults: momentum 0.99, epsilon 1e-3. Running statistics follow
// running = momentum * running + (1 - momentum) * batch, where the batch variance fed to
// the running variance is the unbiased one (as cuDNN and PyTorch do); normalisation
// uses the biased batch variance.
#pragma once

#include "cnnk/geometry.h"

namespace cnn {

namespace ref {
// Training: normalises with batch statistics, updates running_mean/var in place, and
// saves mean and 1/sqrt(var + eps) per channel for backward.
template <class T>
void batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const T* x, const T* gamma,
                                const T* beta, T momentum, T epsilon, T* running_mean,
                                T* running_var, T* y, T* save_mean, T* save_invstd);
template <class T>
void batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const T* x, const T* gamma,
                                 const T* beta, const T* running_mean, const T* running_var,
                                 T epsilon, T* y);
// Gradients of the training forward; dx, dgamma, dbeta assigned.
template <class T>
void batchnorm_backward(const cnnk::BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                        const T* save_mean, const T* save_invstd, T* dx, T* dgamma, T* dbeta);

// Each of the three over channels [first, end) only, the same arithmetic: channels are
// independent, so the CPU backend runs ranges of them on threads.
template <class T>
void batchnorm_forward_training_channels(const cnnk::BatchNormGeometry& g, int first, int end,
                                         const T* x, const T* gamma, const T* beta, T momentum,
                                         T epsilon, T* running_mean, T* running_var, T* y,
                                         T* save_mean, T* save_invstd);
template <class T>
void batchnorm_forward_inference_channels(const cnnk::BatchNormGeometry& g, int first, int end,
                                          const T* x, const T* gamma, const T* beta,
                                          const T* running_mean, const T* running_var, T epsilon,
                                          T* y);
template <class T>
void batchnorm_backward_channels(const cnnk::BatchNormGeometry& g, int first, int end, const T* x,
                                 const T* dy, const T* gamma, const T* save_mean,
                                 const T* save_invstd, T* dx, T* dgamma, T* dbeta);
}  // namespace ref

}  // namespace cnn
