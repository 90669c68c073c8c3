// Problem descriptions shared by every backend: the CPU reference, the handwritten
// kernels and the cuDNN path take the same plain structs. Layout is NCHW for
// activations and OIHW for convolution weights. Nothing here depends on CUDA.
#pragma once

#include <cstdint>

#include "cnnk/hd.h"

namespace cnnk {

// y[n,k,p,q] = b[k] + sum_{c,r,s} x[n,c,p*stride_h - pad_top + r*dil_h,
//                                   q*stride_w - pad_left + s*dil_w] * w[k,c,r,s]
// Input positions outside [0,h) x [0,w) read as zero, which covers asymmetric
// padding: the bottom/right padding is implied by the output size p, q.
struct Conv2dGeometry {
  int n = 0, c = 0, h = 0, w = 0;  // input
  int k = 0, r = 0, s = 0;         // filters: k output channels, r x s window
  int p = 0, q = 0;                // output height, width
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0;
  int dil_h = 1, dil_w = 1;

  CNNK_HD int64_t input_size() const { return int64_t(n) * c * h * w; }
  CNNK_HD int64_t output_size() const { return int64_t(n) * k * p * q; }
  CNNK_HD int64_t filter_size() const { return int64_t(k) * c * r * s; }
};

enum class PoolMode : int { Max = 0, Average = 1 };

// Pooling windows start at p*stride_h - pad_top. Average pooling divides by the count
// of in-bounds inputs only (Keras "same" semantics); padding never wins a max.
struct Pool2dGeometry {
  PoolMode mode = PoolMode::Max;
  int n = 0, c = 0, h = 0, w = 0;
  int p = 0, q = 0;
  int window_h = 2, window_w = 2;
  int stride_h = 2, stride_w = 2;
  int pad_top = 0, pad_left = 0;

  CNNK_HD int64_t input_size() const { return int64_t(n) * c * h * w; }
  CNNK_HD int64_t output_size() const { return int64_t(n) * c * p * q; }
};

// Batch normalization over (n, spatial) per channel c; spatial = h*w (1 after Dense).
struct BatchNormGeometry {
  int n = 0, c = 0, spatial = 1;
  CNNK_HD int64_t size() const { return int64_t(n) * c * spatial; }
  CNNK_HD int64_t reduction() const { return int64_t(n) * spatial; }
};

// Dense: y[n, out] = x[n, in] . W[out, in]^T + b[out].
struct DenseGeometry {
  int n = 0, in = 0, out = 0;
};

// Dropout over n * c * spatial elements. Spatial dropout draws one keep/drop per (n, c)
// and applies it to the whole feature map; plain dropout draws one per element.
struct DropoutGeometry {
  int n = 0, c = 0, spatial = 1;
  bool per_channel = false;
  CNNK_HD int64_t size() const { return int64_t(n) * c * spatial; }
};

}  // namespace cnnk
