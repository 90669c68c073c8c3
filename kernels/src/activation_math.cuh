// Private to kernels/src: the elementwise activations, defined once for the activation
// kernels and for the convolution epilogue that fuses them, so a fused activation gives
// the same bits as the separate pass.
#pragma once

#include "cnnk/activation.h"

namespace cnnk {
namespace act_detail {

struct Relu {
  __device__ float fwd(float x) const { return x > 0.f ? x : 0.f; }
  __device__ float bwd(float y, float dy) const { return y > 0.f ? dy : 0.f; }
};
// The exponential of a non-positive argument only, as the reference: 1 / (1 + exp(-x))
// would turn exp's overflow at x < -88 into 0 where sigmoid is still a normal or
// subnormal float. expf, not __expf: the fast one's error grows with |x| (2 + 1.17|x| ulp)
// and it flushes subnormals, and this kernel is bound by memory, not by the exponential.
struct Sigmoid {
  __device__ float fwd(float x) const {
    const float e = expf(-fabsf(x));
    return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
  }
  __device__ float bwd(float y, float dy) const { return dy * y * (1.f - y); }
};
struct Tanh {
  __device__ float fwd(float x) const { return tanhf(x); }
  __device__ float bwd(float y, float dy) const { return dy * (1.f - y * y); }
};
struct Linear {
  __device__ float fwd(float x) const { return x; }
  __device__ float bwd(float, float dy) const { return dy; }
};

// The forward of `kind`, chosen at run time: in an epilogue the switch is uniform across
// the block and costs next to nothing, and one kernel serves every activation.
__device__ __forceinline__ float activate(ActKind kind, float x) {
  switch (kind) {
    case ActKind::Relu:
      return Relu{}.fwd(x);
    case ActKind::Sigmoid:
      return Sigmoid{}.fwd(x);
    case ActKind::Tanh:
      return Tanh{}.fwd(x);
    case ActKind::Linear:
      break;
  }
  return x;
}

}  // namespace act_detail
}  // namespace cnnk
