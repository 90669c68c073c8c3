// The fused softmax cross-entropy of cnn::ref::softmax_xent_* (engine/ops/loss/
// softmax_xent.h), with the metrics kept on the device so the host reads them rarely.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace cnnk {

// Accumulators in device memory, reset by the caller (cudaMemsetAsync to zero).
struct DeviceMetrics {
  double loss_sum;
  unsigned long long correct;
  unsigned long long count;
};

// One block per row (or a warp per row): writes dlogits = (softmax - target) * grad_scale
// when dlogits is not null, the row's loss into row_loss[r] and 1/0 into row_correct[r]
// (argmax, first on ties, equals the label); then a single-block kernel adds the sums, in
// a fixed order, into *metrics. labels: class ids [rows] (sparse) or targets
// [rows, classes]. row_loss and row_correct are caller workspace of `rows` floats each.
// A sparse label outside [0, classes) counts as wrong with loss 0, its gradient row is
// zero, and *bad_labels (a device int, may be null) is set to 1 for the caller to check
// when it reads the metrics.
cudaError_t softmax_xent(int64_t rows, int64_t classes, const float* logits, const float* labels,
                         bool sparse, float grad_scale, float* dlogits, float* row_loss,
                         float* row_correct, DeviceMetrics* metrics, int* bad_labels,
                         cudaStream_t stream);

// Softmax over the channel axis of an [n, c, spatial] tensor, and its backward through
// the output y (dx = y * (dy - sum_c dy * y)); dx may alias dy.
cudaError_t softmax_forward(int64_t n, int64_t c, int64_t spatial, const float* x, float* y,
                            cudaStream_t stream);
cudaError_t softmax_backward(int64_t n, int64_t c, int64_t spatial, const float* y, const float* dy,
                             float* dx, cudaStream_t stream);

}  // namespace cnnk
