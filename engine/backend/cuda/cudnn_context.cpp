#include "engine/backend/cuda/cudnn_context.h"

#include <fmt/format.h>

#include <cstdio>

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

TensorDesc::TensorDesc(int n, int c, int h, int w) {
  CNN_CUDA(cudnnCreateTensorDescriptor(&d));
  CNN_CUDA(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
}

TensorDesc::~TensorDesc() {
  if (d) cudnnDestroyTensorDescriptor(d);
}

}  // namespace cnn::cuda
