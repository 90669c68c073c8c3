// The work and the memory traffic of one pass of an op, from its geometry alone: what
// `cnn bench` and `cnn profile` divide by a time to report TFLOP/s and GB/s.
//
// FLOPs count a multiply-add as two. Convolution and dense count every product of the
// window, padding included (the convention of cuDNN's and the profilers' figures:
// 2*N*K*P*Q*C*R*S per conv pass); the bias is not counted. Pooling counts one operation
// per window element of each output; batch normalization a fixed count per element
// (see op_cost.cpp). Bytes are the minimum traffic in float32: every tensor the pass
// needs read once, every tensor it writes written once; a kernel that reads more (a
// second pass over x, an im2col buffer) moves more than this and shows a lower GB/s.
#pragma once

#include <string>

#include "cnnk/geometry.h"

namespace cnn::perf {

// Conv2D and Dense have two backward passes (the input gradient, the weight gradient),
// pooling and batch normalization one.
enum class OpPass { Forward, BackwardData, BackwardFilter, BackwardWeights, Backward };

// "forward", "backward-data", "backward-filter", "backward-weights", "backward": the
// names the CUDA backend records its implementation choices under.
std::string pass_name(OpPass pass);

struct OpCost {
  double flops = 0;
  double bytes = 0;
};

// `bias`: the layer has one (its read in forward, its gradient written in
// backward-filter). Throws Error for a pass the op does not have.
OpCost conv2d_cost(const cnnk::Conv2dGeometry& g, bool bias, OpPass pass);
OpCost pool2d_cost(const cnnk::Pool2dGeometry& g, OpPass pass);
// Forward is the training forward (batch statistics, running statistics updated).
OpCost batchnorm_cost(const cnnk::BatchNormGeometry& g, OpPass pass);
OpCost dense_cost(const cnnk::DenseGeometry& g, bool bias, OpPass pass);

// Achieved rates of a cost done in `ms` milliseconds (0 when ms is not positive).
double tflops_per_second(const OpCost& c, double ms);
double gigabytes_per_second(const OpCost& c, double ms);

}  // namespace cnn::perf
