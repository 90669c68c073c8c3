// What the files of the simulated cuDNN (sim_cudnn*.cpp) share: the tensor dimensions, the
// descriptor objects of cudnn.h, the refusals, the checks that calls of more than one op
// family make, and the running of a call's work on the handle's stream. What is not inline
// here is defined in sim_cudnn.cpp. Only those files include this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "cudnn.h"

namespace cnnk_sim::cudnn {

// The dimensions of an NCHW float32 tensor (a filter's k, c, r, s as n, c, h, w).
struct Dims4 {
  int n = 0, c = 0, h = 0, w = 0;

  int64_t count() const { return int64_t(n) * c * h * w; }
  size_t bytes() const { return static_cast<size_t>(count()) * sizeof(float); }
  int64_t at(int in, int ic, int ih, int iw) const {
    return ((int64_t(in) * c + ic) * h + ih) * w + iw;
  }
  bool operator==(const Dims4& o) const { return n == o.n && c == o.c && h == o.h && w == o.w; }
  bool operator!=(const Dims4& o) const { return !(*this == o); }
  std::string str() const {
    return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
           std::to_string(w);
  }
};

struct ConvParams {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
};

struct PoolParams {
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  int window_h = 1, window_w = 1, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
};

}  // namespace cnnk_sim::cudnn

// The opaque objects of cudnn.h. `set`: whether a Set call has filled the descriptor.
struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  bool set = false;
  cnnk_sim::cudnn::Dims4 dims;
};
struct cudnnFilterStruct {
  bool set = false;
  cnnk_sim::cudnn::Dims4 dims;
};
struct cudnnConvolutionStruct {
  bool set = false;
  cnnk_sim::cudnn::ConvParams params;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // recorded; the results are FP32 regardless
};
struct cudnnPoolingStruct {
  bool set = false;
  cnnk_sim::cudnn::PoolParams params;
};
struct cudnnActivationStruct {
  bool set = false;
  cudnnActivationMode_t mode = CUDNN_ACTIVATION_RELU;
};

namespace cnnk_sim::cudnn {

// ---- Refusals -----------------------------------------------------------------------------------

// Why a call is refused; no status when it is acceptable.
struct Problem {
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  std::string why;
  explicit operator bool() const { return status != CUDNN_STATUS_SUCCESS; }
};
inline Problem bad(std::string why) { return Problem{CUDNN_STATUS_BAD_PARAM, std::move(why)}; }
inline Problem unsupported(std::string why) {
  return Problem{CUDNN_STATUS_NOT_SUPPORTED, "the simulated cuDNN does not model " + why};
}

// Fails `call` with `p`: its status, and its reason as this thread's message for
// cudnnGetLastErrorString, also written to stderr.
cudnnStatus_t refuse(const char* call, const Problem& p);

// ---- Checks shared by the calls -----------------------------------------------------------------

inline Problem usable(cudnnHandle_t handle) {
  return handle ? Problem{} : bad("the handle is null");
}

// A descriptor argument: present and filled by its Set call.
template <class Desc>
Problem described(const char* name, const Desc* d) {
  if (!d) return bad(std::string(name) + " is null");
  if (!d->set) return bad(std::string(name) + " was created but never set");
  return {};
}

// cuDNN reads the scaling factors from host memory when the call is made.
Problem host_scalars(const void* alpha, const void* beta);

// Device memory a call touches: checked when the call is made, and again when the work
// runs, since a replay of a captured call can come after the memory was freed.
struct Region {
  const char* name;
  const void* p;
  size_t bytes;
};
using Regions = std::vector<Region>;

Problem on_device(const Regions& regions);

Problem same_dims(const char* a_name, const Dims4& a, const char* b_name, const Dims4& b);

// The per-channel parameter tensors of batch norm and the bias of a convolution: 1xCx1x1.
Problem per_channel(const char* name, const Dims4& d, int channels);

// Two or more descriptors of an elementwise call: set, and all alike.
Problem alike(std::initializer_list<std::pair<const char*, cudnnTensorDescriptor_t>> descs);

// ---- Running the work ---------------------------------------------------------------------------

// The scaling of an output: out = alpha * result + beta * out. With beta == 0 the prior
// output is not read (it may be NaN), as cuDNN documents.
struct Blend {
  float alpha = 1.0f, beta = 0.0f;

  void store(float* out, double result) const {
    double v = static_cast<double>(alpha) * result;
    if (beta != 0.0f) v += static_cast<double>(beta) * static_cast<double>(*out);
    *out = static_cast<float>(v);
  }
  void store_all(const std::vector<double>& results, float* out) const {
    for (size_t i = 0; i < results.size(); ++i) store(out + i, results[i]);
  }
};
// The values behind the host pointers, now: a captured call keeps these.
inline Blend blend_of(const void* alpha, const void* beta) {
  return Blend{*static_cast<const float*>(alpha), *static_cast<const float*>(beta)};
}

// Puts `work` in the handle's stream: it runs now, or at each replay of a capture.
cudnnStatus_t submit(cudnnHandle_t handle, const char* call, Regions regions,
                     std::function<void()> work);

inline const float* floats(const void* p) { return static_cast<const float*>(p); }
inline float* floats(void* p) { return static_cast<float*>(p); }

// Calls `f` with the index of every element of channel `c`: the (n, h, w) it reduces over.
template <class F>
void for_channel(const Dims4& d, int c, F f) {
  for (int n = 0; n < d.n; ++n)
    for (int h = 0; h < d.h; ++h)
      for (int w = 0; w < d.w; ++w) f(d.at(n, c, h, w));
}

}  // namespace cnnk_sim::cudnn
