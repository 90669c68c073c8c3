// One batch through a model on two backends with the same weights, inputs and dropout
// masks, compared layer by layer and pass by pass: the GPU kernels (native or cuDNN)
// against the CPU reference. The counter-based random numbers make the masks equal.
// Each layer is judged on its own, run by the candidate on the reference's inputs and
// output gradient; the whole model's chained run is judged as well, by its logits and
// all its weight gradients.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnk/geometry.h"
#include "engine/backend/backend.h"
#include "engine/core/tensor.h"

namespace cnn {

struct VerifyRow {
  std::string layer;     // node name
  std::string type;      // Conv2D, ...
  std::string pass;      // "forward", "input_grad", "weight_grad"
  std::string param;     // for weight_grad: "kernel", "bias", ...
  double max_abs = 0;    // max |candidate - reference|
  double max_rel = 0;    // max_abs / max |reference|
  double rel_l2 = 0;     // ||candidate - reference|| / ||reference||
  double tolerance = 0;  // an element is off when |difference| > tolerance * max|reference|
  int64_t off = 0;       // how many elements are off
  // A max-pooling layer's input gradient: how many groups of inputs tie for a window's
  // maximum, each judged by its sum (which input wins a tie is each implementation's
  // choice).
  int64_t tie_groups = 0;
  int64_t size = 0;
  bool ok = false;
};

struct VerifyOptions {
  uint64_t seed = 42;
  // Bounds on each element's error relative to the tensor's scale (max |reference|).
  // FP32 sums of a few thousand terms stay far below them; a wrong index does not.
  double forward_tolerance = 1e-4;
  double gradient_tolerance = 1e-3;
  // Gradients may be off in a few elements (a margin: each layer's backward runs on the
  // reference's own outputs, so its choices are the reference's, and exact ties in max
  // pooling are judged by group). Forward outputs must have no element off.
  double gradient_off_fraction = 1e-3;
  // The chained run (each layer on the candidate's own outputs, as training runs them):
  // the logits, and all weight gradients together, each judged by its relative L2 error.
  // There a ReLU or a max-pooling window that rounding tips the other way moves a whole
  // gradient value, so single elements are not judged: on the seed models at batch 5,
  // 160 runs of the OpenBLAS path moved all weight gradients by at most 2.1e-3 that way
  // (five runs by more than 1e-5); a wrong kernel moves them by their whole size.
  double chain_tolerance = 1e-2;

  // The bounds for a candidate that runs under --tf32: tensor cores round each product's
  // inputs to 10-bit mantissas (unit roundoff 2^-11, so up to 2^-10 per product, ten times
  // FP32's sum of a few thousand terms), and in the chained run each layer passes its
  // error on to the next; a wrong index is still off by the tensor's whole scale.
  static VerifyOptions tf32() {
    VerifyOptions o;
    o.forward_tolerance = 5e-3;
    o.gradient_tolerance = 2e-2;
    o.chain_tolerance = 5e-2;
    return o;
  }
};

// For each element of a tensor, the element that stands for its group: itself when
// alone, or one element for all the inputs that tie for the maxima of max-pooling windows.
// Empty: every element on its own.
using TieGroups = std::vector<int64_t>;

// The groups of a max-pooling input gradient. A window's gradient goes to one of the
// inputs that tie for its maximum, and which one is each implementation's choice (the
// reference and the native kernels take the first in row-major order; cuDNN does not say,
// and ReLU zeros tie all the time): the inputs tying in a window are one group, joined
// with the groups of the windows they share, and the gradient a group holds in all is the
// same whoever won. Ties are read from the reference's input and output.
TieGroups max_pool_tie_groups(const cnnk::Pool2dGeometry& g, const float* x, const float* y);

// One row's comparison of host tensors, the candidate against the reference: each group's
// sum (an element alone is its own group) within tolerance * max|reference element|; the
// elements of a group that is not are all off.
VerifyRow compare_tensors(const Tensor& ref_host, const Tensor& cand_host, double tolerance,
                          double off_fraction, const TieGroups& groups = {});

// x: a batch [n, ...] and labels [n] on the host. Builds `model_name` on each backend,
// initialises the reference's parameters from the seed, copies them to the candidate,
// runs forward (training mode), the loss and backward on both (the chained run), then
// each of the candidate's layers alone on the reference's tensors. The rows: per layer,
// its forward, its first input's gradient and each trainable parameter's gradient, then
// the chained run's (layer "(model)"): the logits and all weight gradients.
std::vector<VerifyRow> verify_model(const std::string& model_name, Backend& reference,
                                    Backend& candidate, const Tensor& x, const Tensor& labels,
                                    const VerifyOptions& options = {});

}  // namespace cnn
