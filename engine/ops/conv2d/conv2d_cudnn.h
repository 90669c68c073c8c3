// Conv2D through cuDNN (the legacy convolution API): the fallback path of the GPU
// backend and the yardstick of the handwritten kernel. Strict FP32 math (CUDNN_FMA_MATH)
// unless the context allows TF32 (CudnnContext::tf32: CUDNN_TENSOR_OP_MATH).
#pragma once

#include <string>

#include "cnnk/geometry.h"
#include "cnnk/status.h"

namespace cnn::cuda {
class CudnnContext;
}

namespace cnn::cudnn {

// cuDNN pads symmetrically: a geometry whose bottom/right padding differs from the
// top/left one so that the output size changes (Keras "same" at stride 2 on some sizes)
// is not supported here; the native kernel handles it.
cnnk::Support conv2d_supports(const cnnk::Conv2dGeometry& g);

// Where the context records the algorithm a pass runs (CudnnContext::algorithm):
// "conv2d <pass> <shape>", pass "forward", "backward-data" or "backward-filter", the
// backend's choice id for that pass.
std::string conv2d_algorithm_id(const char* pass, const cnnk::Conv2dGeometry& g);

// Outputs assigned; b / db may be null. Algorithms come from cuDNN's heuristics, the
// first whose workspace fits the context's budget and, when the context asks for it,
// that is deterministic (a choice other than the heuristics' first is logged).
void conv2d_forward(cuda::CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* x,
                    const float* w, const float* b, float* y);
void conv2d_backward_data(cuda::CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* dy,
                          const float* w, float* dx);
void conv2d_backward_filter(cuda::CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* x,
                            const float* dy, float* dw, float* db);

}  // namespace cnn::cudnn
