#include "engine/backend/cuda/cudnn_context.h"

#include <fmt/format.h>

#include <cstdio>
#include <limits>

#include "engine/core/error.h"

namespace cnn::cuda {

CudnnContext::CudnnContext(cudaStream_t stream, std::shared_ptr<DeviceAllocator> allocator,
                           size_t workspace_limit)
    : allocator_(std::move(allocator)), workspace_limit_(workspace_limit) {
  CNN_CUDA(cudnnCreate(&handle_));
  CNN_CUDA(cudnnSetStream(handle_, stream));
}

CudnnContext::~CudnnContext() {
  plans_.clear();  // descriptors before the handle
  if (workspace_) allocator_->release(workspace_);
  if (handle_) cudnnDestroy(handle_);
}

void* CudnnContext::workspace(size_t bytes) {
  CNN_CHECK(bytes <= workspace_limit_, Error,
            "cuDNN workspace of {} bytes exceeds the budget of {} bytes", bytes, workspace_limit_);
  if (bytes > workspace_bytes_) {
    // Not back to the cache while a captured step may still use it.
    allocator_->release_after_graphs(workspace_);
    workspace_ = nullptr;
    workspace_bytes_ = 0;  // so that a failed allocation leaves no size without a buffer
    workspace_ = allocator_->allocate(bytes, "the cuDNN workspace");
    workspace_bytes_ = bytes;
  }
  return workspace_;
}

void CudnnContext::log(const std::string& line) {
  log_.push_back(line);
  if (verbose) std::fprintf(stderr, "[cnn] %s\n", line.c_str());
}

bool descriptor_fits(int64_t n, int64_t c, int64_t h, int64_t w) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  int64_t elements = 1;
  for (const int64_t d : {n, c, h, w}) {
    if (d < 0 || (d > 0 && elements > kMax / d)) return false;
    elements *= d;
  }
  return true;
}

TensorDesc::TensorDesc(int64_t n, int64_t c, int64_t h, int64_t w) {
  CNN_CHECK(descriptor_fits(n, c, h, w), ConfigError,
            "cuDNN: a tensor of [{}, {}, {}, {}] does not fit its descriptors' 32-bit element "
            "counts; run it native (--impl native)",
            n, c, h, w);
  CNN_CUDA(cudnnCreateTensorDescriptor(&d));
  const cudnnStatus_t st =
      cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(n),
                                 static_cast<int>(c), static_cast<int>(h), static_cast<int>(w));
  if (st != CUDNN_STATUS_SUCCESS) {
    cudnnDestroyTensorDescriptor(d);  // the destructor of a constructor that throws never runs
    throw_cudnn_error(st, "cudnnSetTensor4dDescriptor", __FILE__, __LINE__);
  }
}

TensorDesc::~TensorDesc() {
  if (d) cudnnDestroyTensorDescriptor(d);
}

}  // namespace cnn::cuda
