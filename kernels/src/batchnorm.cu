// Batch normalization with the semantics of cnn::ref::batchnorm_* (batchnorm_ref.cpp).
//
// Training forward and backward: one block per channel, which reduces over the channel's
// n * spatial values (two passes in double: the mean, then the centred squares; or the
// sums of dy and dy * xhat) and then writes the channel's outputs, all in one launch.
// Each thread sums a fixed, strided subset in double and the block combines the partial
// sums in a fixed tree: the result depends only on the shape, never on scheduling.
// The elementwise formulas use explicitly rounded double operations (no contraction into
// fma) in the reference's order, so outputs match it to the last bit but for the
// rounding of the sums themselves.
//
// Inference: a 2-D grid, y over channels, x over the channel's values; each thread works
// out its channel's constants once.
#include "cnnk/batchnorm.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::block_sum;
using detail::ChannelWalk;
using detail::kScratch;

constexpr int kMaxReduceThreads = 512;

// (x - mean) * scale + shift, rounded at each step as the reference's double code is.
__device__ __forceinline__ float affine(float x, double mean, double scale, double shift) {
  return static_cast<float>(
      __dadd_rn(__dmul_rn(__dsub_rn(static_cast<double>(x), mean), scale), shift));
}

// running = momentum * running + (1 - momentum) * batch, in double as the reference.
__device__ __forceinline__ float blend(double momentum, float running, double batch) {
  return static_cast<float>(__dadd_rn(__dmul_rn(momentum, static_cast<double>(running)),
                                      __dmul_rn(1.0 - momentum, batch)));
}

// y may alias x: x is read by the two reductions before any y is written (block_sum
// synchronizes), and the last pass reads x[i] just before writing y[i] in the same thread.
__global__ void __launch_bounds__(kMaxReduceThreads)
    batchnorm_training_kernel(const BatchNormGeometry g, const float* x,
                              const float* __restrict__ gamma, const float* __restrict__ beta,
                              double momentum, double epsilon, float* __restrict__ running_mean,
                              float* __restrict__ running_var, float* y,
                              float* __restrict__ save_mean, float* __restrict__ save_invstd) {
  __shared__ double scratch[kScratch];
  const double m = static_cast<double>(g.reduction());
  for (int c = blockIdx.x; c < g.c; c += gridDim.x) {
    double sum = 0.0;
    for (ChannelWalk it(g.n, g.c, g.spatial, c, threadIdx.x, blockDim.x); it.valid(); it.next())
      sum += static_cast<double>(x[it.offset()]);
    sum = block_sum(sum, scratch);
    const double mean = m > 0 ? sum / m : 0.0;

    double sq = 0.0;
    for (ChannelWalk it(g.n, g.c, g.spatial, c, threadIdx.x, blockDim.x); it.valid(); it.next()) {
      const double d = static_cast<double>(x[it.offset()]) - mean;
      sq += d * d;
    }
    sq = block_sum(sq, scratch);
    const double var = m > 0 ? sq / m : 0.0;             // biased: normalisation
    const double unbiased = m > 1 ? sq / (m - 1) : var;  // unbiased: running variance
    const double invstd = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(var, epsilon)));
    const double scale = __dmul_rn(static_cast<double>(gamma[c]), invstd);
    const double shift = static_cast<double>(beta[c]);

    for (ChannelWalk it(g.n, g.c, g.spatial, c, threadIdx.x, blockDim.x); it.valid(); it.next()) {
      const int64_t i = it.offset();
      y[i] = affine(x[i], mean, scale, shift);
    }
    if (threadIdx.x == 0) {
      running_mean[c] = blend(momentum, running_mean[c], mean);
      running_var[c] = blend(momentum, running_var[c], unbiased);
      save_mean[c] = static_cast<float>(mean);
      save_invstd[c] = static_cast<float>(invstd);
    }
  }
}

// y may alias x (elementwise).
__global__ void batchnorm_inference_kernel(const BatchNormGeometry g, const float* x,
                                           const float* __restrict__ gamma,
                                           const float* __restrict__ beta,
                                           const float* __restrict__ running_mean,
                                           const float* __restrict__ running_var, double epsilon,
                                           float* y) {
  for (int c = blockIdx.y; c < g.c; c += gridDim.y) {
    const double invstd =
        __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(static_cast<double>(running_var[c]), epsilon)));
    const double mean = static_cast<double>(running_mean[c]);
    const double scale = __dmul_rn(static_cast<double>(gamma[c]), invstd);
    const double shift = static_cast<double>(beta[c]);
    for (ChannelWalk it(g.n, g.c, g.spatial, c, detail::global_index(), detail::global_stride());
         it.valid(); it.next()) {
      const int64_t i = it.offset();
      y[i] = affine(x[i], mean, scale, shift);
    }
  }
}

// With xhat = (x - mean) * invstd: dbeta = sum dy, dgamma = sum dy * xhat,
// dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma).
__global__ void __launch_bounds__(kMaxReduceThreads)
    batchnorm_backward_kernel(const BatchNormGeometry g, const float* __restrict__ x,
                              const float* __restrict__ dy, const float* __restrict__ gamma,
                              const float* __restrict__ save_mean,
                              const float* __restrict__ save_invstd, float* __restrict__ dx,
                              float* __restrict__ dgamma, float* __restrict__ dbeta) {
  __shared__ double scratch[kScratch];
  const double m = static_cast<double>(g.reduction());
  for (int c = blockIdx.x; c < g.c; c += gridDim.x) {
    const double mean = static_cast<double>(save_mean[c]);
    const double invstd = static_cast<double>(save_invstd[c]);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (ChannelWalk it(g.n, g.c, g.spatial, c, threadIdx.x, blockDim.x); it.valid(); it.next()) {
      const int64_t i = it.offset();
      const double xhat = __dmul_rn(static_cast<double>(x[i]) - mean, invstd);
      const double d = static_cast<double>(dy[i]);
      sum_dy += d;
      sum_dy_xhat += d * xhat;
    }
    sum_dy = block_sum(sum_dy, scratch);
    sum_dy_xhat = block_sum(sum_dy_xhat, scratch);
    const double k = m > 0 ? __ddiv_rn(__dmul_rn(static_cast<double>(gamma[c]), invstd), m) : 0.0;
    for (ChannelWalk it(g.n, g.c, g.spatial, c, threadIdx.x, blockDim.x); it.valid(); it.next()) {
      const int64_t i = it.offset();
      const double xhat = __dmul_rn(static_cast<double>(x[i]) - mean, invstd);
      const double inner = __dsub_rn(__dsub_rn(__dmul_rn(m, static_cast<double>(dy[i])), sum_dy),
                                     __dmul_rn(xhat, sum_dy_xhat));
      dx[i] = static_cast<float>(__dmul_rn(k, inner));
    }
    if (threadIdx.x == 0) {
      dgamma[c] = static_cast<float>(sum_dy_xhat);
      dbeta[c] = static_cast<float>(sum_dy);
    }
  }
}

// One block per channel; the block size depends only on the reduction length.
dim3 channel_blocks(const BatchNormGeometry& g) { return dim3(static_cast<unsigned>(g.c)); }
int channel_threads(const BatchNormGeometry& g) {
  return detail::reduce_threads(g.reduction(), kMaxReduceThreads);
}

}  // namespace

// A batch of n = 0 still updates the running statistics and the saved ones, as the
// reference does (the batch mean and variance read as 0): only c = 0 launches nothing.
cudaError_t batchnorm_forward_training(const BatchNormGeometry& g, const float* x,
                                       const float* gamma, const float* beta, float momentum,
                                       float epsilon, float* running_mean, float* running_var,
                                       float* y, float* save_mean, float* save_invstd,
                                       cudaStream_t stream) {
  if (g.c <= 0) return cudaSuccess;
  detail::launch(batchnorm_training_kernel, channel_blocks(g), channel_threads(g), 0, stream, g, x,
                 gamma, beta, static_cast<double>(momentum), static_cast<double>(epsilon),
                 running_mean, running_var, y, save_mean, save_invstd);
  return cudaGetLastError();
}

cudaError_t batchnorm_forward_inference(const BatchNormGeometry& g, const float* x,
                                        const float* gamma, const float* beta,
                                        const float* running_mean, const float* running_var,
                                        float epsilon, float* y, cudaStream_t stream) {
  if (g.size() <= 0) return cudaSuccess;
  detail::launch(batchnorm_inference_kernel, detail::channel_grid(g.c, g.reduction()),
                 detail::kThreads, 0, stream, g, x, gamma, beta, running_mean, running_var,
                 static_cast<double>(epsilon), y);
  return cudaGetLastError();
}

// dgamma and dbeta are assigned (0 for an empty batch); dx is assigned.
cudaError_t batchnorm_backward(const BatchNormGeometry& g, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_invstd,
                               float* dx, float* dgamma, float* dbeta, cudaStream_t stream) {
  if (g.c <= 0) return cudaSuccess;
  detail::launch(batchnorm_backward_kernel, channel_blocks(g), channel_threads(g), 0, stream, g, x,
                 dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  return cudaGetLastError();
}

}  // namespace cnnk
