// Softmax cross-entropy on logits, fused with its gradient, for sparse labels (class
// index per row, stored as float) and one-hot / probability targets. A model whose last
// layer has a softmax activation trains through this on the pre-softmax logits, which is
// what Keras's (sparse_)categorical_crossentropy on softmax outputs computes, stably.
#pragma once

#include <cstdint>

namespace cnn {

struct LossGeometry {
  int64_t rows = 0, classes = 0;
};

namespace ref {
// Returns the summed loss over rows (double accumulation). When dlogits is not null it
// receives (softmax(logits) - target) * grad_scale (assigned). correct, when not null,
// receives the count of rows whose argmax (first on ties) equals the label / the
// target's argmax. A sparse label outside [0, classes) throws cnn::DataError.
template <class T>
double softmax_xent_sparse(const LossGeometry& g, const T* logits, const T* labels, T grad_scale,
                           T* dlogits, int64_t* correct);
template <class T>
double softmax_xent_dense(const LossGeometry& g, const T* logits, const T* targets, T grad_scale,
                          T* dlogits, int64_t* correct);
}  // namespace ref

}  // namespace cnn
