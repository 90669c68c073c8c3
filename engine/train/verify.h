// One batch through a model on two backends with the same weights, inputs and dropout
// masks, compared layer by layer and pass by pass: the GPU kernels (native or cuDNN)
// against the CPU reference. The counter-based random numbers make the masks equal.
#pragma once

#include <string>
#include <vector>

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
  int64_t size = 0;
  bool ok = false;
};

struct VerifyOptions {
  uint64_t seed = 42;
  // Bounds on each element's error relative to the tensor's scale (max |reference|).
  // FP32 sums of a few thousand terms stay far below them; a wrong index does not.
  double forward_tolerance = 1e-4;
  double gradient_tolerance = 1e-3;
  // Gradients may be off in a few elements: where two inputs of a max-pooling window tie
  // in one backend and differ by a rounding in the other, the gradient goes to different
  // places (seen: 8 of 86528 at mnist-cnn's first pooling, CPU BLAS against the loops).
  // Forward outputs must have no element off.
  double gradient_off_fraction = 1e-3;

  // The bounds for a candidate that runs under --tf32: tensor cores round each product's
  // inputs to 10-bit mantissas (unit roundoff 2^-11, so up to 2^-10 per product, ten times
  // FP32's sum of a few thousand terms), and each layer passes its error on to the next;
  // a wrong index is still off by the tensor's whole scale.
  static VerifyOptions tf32() {
    VerifyOptions o;
    o.forward_tolerance = 5e-3;
    o.gradient_tolerance = 2e-2;
    return o;
  }
};

// x: a batch [n, ...] and labels [n] on the host. Builds `model_name` on each backend,
// initialises the reference's parameters from the seed, copies them to the candidate,
// runs forward (training mode), the loss and backward on both, and compares.
std::vector<VerifyRow> verify_model(const std::string& model_name, Backend& reference,
                                    Backend& candidate, const Tensor& x, const Tensor& labels,
                                    const VerifyOptions& options = {});

}  // namespace cnn
