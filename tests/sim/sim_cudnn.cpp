// The simulated cuDNN (include/cudnn.h): the legacy calls the engine makes, as plain loops
// with double accumulation over NCHW float32 tensors, on the simulated device's streams
// (cnnk_sim::enqueue), so that a captured call runs at each replay with the values it was
// given.
//
// Each call first checks what the real library would refuse, or what would make it compute
// garbage on a GPU (a pointer that is not device memory covering its tensor, shapes that do
// not agree, a workspace too small for the algorithm), and refuses with a status and a
// message (cudnnGetLastErrorString, and stderr) instead of running.
//
// This file holds the handle, the error strings and the descriptors, and defines what the op
// families share (sim_cudnn_internal.h). The calls of each family are in a file of their own:
// sim_cudnn_conv.cpp, sim_cudnn_pool.cpp, sim_cudnn_batchnorm.cpp, sim_cudnn_activation.cpp.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "cnnk_sim_device.h"
#include "cudnn.h"
#include "sim_cudnn_internal.h"

namespace {

// The message cudnnGetLastErrorString hands out, per host thread as cuDNN keeps it.
thread_local std::string t_last_message;

}  // namespace

// ==== Shared by the op families (declared in sim_cudnn_internal.h) ===============================

namespace cnnk_sim::cudnn {

// ---- Refusals -----------------------------------------------------------------------------------

cudnnStatus_t refuse(const char* call, const Problem& p) {
  t_last_message = std::string(call) + ": " + p.why;
  std::fprintf(stderr, "simulated cuDNN: %s\n", t_last_message.c_str());
  return p.status;
}

// ---- Checks shared by the calls -----------------------------------------------------------------

Problem host_scalars(const void* alpha, const void* beta) {
  if (!alpha || !beta) return bad("a scaling factor (alpha or beta) is null");
  if (cnnk_sim::is_device_memory(alpha, sizeof(float)) ||
      cnnk_sim::is_device_memory(beta, sizeof(float)))
    return bad(
        "a scaling factor (alpha or beta) points to device memory; cuDNN reads them "
        "from host memory");
  return {};
}

Problem on_device(const Regions& regions) {
  for (const Region& r : regions)
    if (!cnnk_sim::is_device_memory(r.p, r.bytes))
      return bad(std::string(r.name) + (r.p ? "" : " (null)") +
                 " is not device memory covering its " + std::to_string(r.bytes) + " bytes");
  return {};
}

Problem same_dims(const char* a_name, const Dims4& a, const char* b_name, const Dims4& b) {
  if (a == b) return {};
  return bad(std::string(a_name) + " is " + a.str() + " but " + b_name + " is " + b.str() +
             "; they must agree");
}

Problem per_channel(const char* name, const Dims4& d, int channels) {
  const Dims4 want{1, channels, 1, 1};
  if (d == want) return {};
  return bad(std::string(name) + " is " + d.str() + "; it must be " + want.str());
}

Problem alike(std::initializer_list<std::pair<const char*, cudnnTensorDescriptor_t>> descs) {
  for (const auto& d : descs)
    if (Problem p = described(d.first, d.second)) return p;
  const auto& first = *descs.begin();
  for (const auto& d : descs)
    if (Problem p = same_dims(first.first, first.second->dims, d.first, d.second->dims)) return p;
  return {};
}

// ---- Running the work ---------------------------------------------------------------------------

cudnnStatus_t submit(cudnnHandle_t handle, const char* call, Regions regions,
                     std::function<void()> work) {
  const cudaError_t queued =
      cnnk_sim::enqueue(handle->stream, call, [call, regions = std::move(regions), work] {
        if (Problem p = on_device(regions)) {
          cnnk_sim::report(cudaErrorLaunchFailure,
                           std::string("simulated cuDNN: ") + call + " when it ran: " + p.why);
          return;
        }
        work();
      });
  if (queued == cudaSuccess) return CUDNN_STATUS_SUCCESS;
  return refuse(call,
                Problem{CUDNN_STATUS_EXECUTION_FAILED,
                        std::string("the stream refused the work: ") + cudaGetErrorString(queued)});
}

}  // namespace cnnk_sim::cudnn

using cnnk_sim::cudnn::bad;
using cnnk_sim::cudnn::ConvParams;
using cnnk_sim::cudnn::Dims4;
using cnnk_sim::cudnn::PoolParams;
using cnnk_sim::cudnn::Problem;
using cnnk_sim::cudnn::refuse;
using cnnk_sim::cudnn::unsupported;
using cnnk_sim::cudnn::usable;

// ==== The API ====================================================================================

size_t cudnnGetVersion() { return CUDNN_VERSION; }

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED:
      return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_NOT_SUPPORTED_SHAPE:
      return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
    case CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH:
      return "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH";
    case CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT:
      return "CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT";
    case CUDNN_STATUS_INTERNAL_ERROR:
      return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (!message || max_size == 0) return;
  const size_t n = std::min(t_last_message.size(), max_size - 1);
  std::memcpy(message, t_last_message.data(), n);
  message[n] = '\0';
  t_last_message.clear();
}

// ---- Handle -------------------------------------------------------------------------------------

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return refuse("cudnnCreate", bad("the handle pointer is null"));
  *handle = new cudnnContext;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  if (Problem p = usable(handle)) return refuse("cudnnSetStream", p);
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

// ---- Descriptors --------------------------------------------------------------------------------

namespace {

template <class Desc>
cudnnStatus_t create(const char* call, Desc** d) {
  if (!d) return refuse(call, bad("the descriptor pointer is null"));
  *d = new Desc;
  return CUDNN_STATUS_SUCCESS;
}

// The four dimensions of a tensor or filter descriptor: NCHW float32, none empty.
Problem dims_problem(cudnnTensorFormat_t format, cudnnDataType_t type, const Dims4& d) {
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return bad("format is not a cudnnTensorFormat_t");
  if (format != CUDNN_TENSOR_NCHW) return unsupported("layouts other than CUDNN_TENSOR_NCHW");
  if (type != CUDNN_DATA_FLOAT) return unsupported("data types other than CUDNN_DATA_FLOAT");
  if (d.n < 0 || d.c < 0 || d.h < 0 || d.w < 0) return bad("negative dimension in " + d.str());
  if (d.count() == 0) return unsupported("empty tensors (" + d.str() + ")");
  if (d.count() > std::numeric_limits<int32_t>::max())
    return unsupported("tensors of more than 2^31 - 1 elements (" + d.str() + ")");
  return {};
}

// Sets a tensor or filter descriptor (both are four dimensions) after the checks above.
template <class Desc>
cudnnStatus_t set_dims(const char* call, Desc* desc, const char* desc_name,
                       cudnnTensorFormat_t format, cudnnDataType_t type, const Dims4& d) {
  if (!desc) return refuse(call, bad(std::string(desc_name) + " is null"));
  if (Problem p = dims_problem(format, type, d)) return refuse(call, p);
  desc->dims = d;
  desc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
  return create("cudnnCreateTensorDescriptor", tensorDesc);
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  delete tensorDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc,
                                         cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                         int n, int c, int h, int w) {
  return set_dims("cudnnSetTensor4dDescriptor", tensorDesc, "tensorDesc", format, dataType,
                  Dims4{n, c, h, w});
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
  return create("cudnnCreateFilterDescriptor", filterDesc);
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  delete filterDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  return set_dims("cudnnSetFilter4dDescriptor", filterDesc, "filterDesc", format, dataType,
                  Dims4{k, c, h, w});
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  return create("cudnnCreateConvolutionDescriptor", convDesc);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  delete convDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  const char* call = "cudnnSetConvolution2dDescriptor";
  if (!convDesc) return refuse(call, bad("convDesc is null"));
  if (pad_h < 0 || pad_w < 0) return refuse(call, bad("negative padding"));
  if (u <= 0 || v <= 0) return refuse(call, bad("a stride is not positive"));
  if (dilation_h <= 0 || dilation_w <= 0) return refuse(call, bad("a dilation is not positive"));
  if (mode == CUDNN_CONVOLUTION)
    return refuse(call, unsupported("CUDNN_CONVOLUTION (flipped filters); only "
                                    "CUDNN_CROSS_CORRELATION"));
  if (mode != CUDNN_CROSS_CORRELATION) return refuse(call, bad("mode is not a convolution mode"));
  if (computeType != CUDNN_DATA_FLOAT)
    return refuse(call, unsupported("compute types other than CUDNN_DATA_FLOAT"));
  convDesc->params = ConvParams{pad_h, pad_w, u, v, dilation_h, dilation_w};
  convDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType) {
  const char* call = "cudnnSetConvolutionMathType";
  if (!convDesc) return refuse(call, bad("convDesc is null"));
  switch (mathType) {
    case CUDNN_DEFAULT_MATH:
    case CUDNN_TENSOR_OP_MATH:
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
    case CUDNN_FMA_MATH:
      convDesc->math = mathType;
      return CUDNN_STATUS_SUCCESS;
  }
  return refuse(call, bad("mathType is not a cudnnMathType_t"));
}
cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t* mathType) {
  if (!convDesc || !mathType)
    return refuse("cudnnGetConvolutionMathType", bad("convDesc or mathType is null"));
  *mathType = convDesc->math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* poolingDesc) {
  return create("cudnnCreatePoolingDescriptor", poolingDesc);
}
cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t poolingDesc) {
  delete poolingDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t poolingDesc,
                                          cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight,
                                          int windowWidth, int verticalPadding,
                                          int horizontalPadding, int verticalStride,
                                          int horizontalStride) {
  const char* call = "cudnnSetPooling2dDescriptor";
  if (!poolingDesc) return refuse(call, bad("poolingDesc is null"));
  if (windowHeight <= 0 || windowWidth <= 0 || verticalStride <= 0 || horizontalStride <= 0)
    return refuse(call, bad("a window size or stride is not positive"));
  if (verticalPadding < 0 || horizontalPadding < 0) return refuse(call, bad("negative padding"));
  if (mode != CUDNN_POOLING_MAX && mode != CUDNN_POOLING_MAX_DETERMINISTIC &&
      mode != CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING)
    return refuse(call, unsupported("pooling mode " + std::to_string(static_cast<int>(mode)) +
                                    " (only MAX, MAX_DETERMINISTIC and "
                                    "AVERAGE_COUNT_EXCLUDE_PADDING)"));
  if (maxpoolingNanOpt != CUDNN_NOT_PROPAGATE_NAN)
    return refuse(call, unsupported("NaN propagation (only CUDNN_NOT_PROPAGATE_NAN)"));
  // A window could then lie wholly in the padding, whose result cuDNN does not document.
  if (verticalPadding >= windowHeight || horizontalPadding >= windowWidth)
    return refuse(call, unsupported("padding as large as the window"));
  poolingDesc->params =
      PoolParams{mode,           windowHeight,    windowWidth, verticalPadding, horizontalPadding,
                 verticalStride, horizontalStride};
  poolingDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t* activationDesc) {
  return create("cudnnCreateActivationDescriptor", activationDesc);
}
cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t activationDesc) {
  delete activationDesc;
  return CUDNN_STATUS_SUCCESS;
}
// coef matters only to the clipped ReLU and ELU, which are refused.
cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t activationDesc,
                                           cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t reluNanOpt, double /*coef*/) {
  const char* call = "cudnnSetActivationDescriptor";
  if (!activationDesc) return refuse(call, bad("activationDesc is null"));
  if (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_SIGMOID &&
      mode != CUDNN_ACTIVATION_TANH)
    return refuse(call, unsupported("activation mode " + std::to_string(static_cast<int>(mode)) +
                                    " (only RELU, SIGMOID, TANH)"));
  if (reluNanOpt != CUDNN_NOT_PROPAGATE_NAN)
    return refuse(call, unsupported("NaN propagation (only CUDNN_NOT_PROPAGATE_NAN)"));
  activationDesc->mode = mode;
  activationDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}
