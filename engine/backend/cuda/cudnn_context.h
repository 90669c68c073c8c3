// What the cuDNN paths of the op families share: the handle bound to the backend's
// stream, one workspace buffer grown to the largest need (so steps after the first do
// not allocate), the workspace budget, a cache of per-shape plans (descriptors and
// chosen algorithms), and a log of the choices made.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_check.h"
#include "engine/backend/cuda/device_allocator.h"

namespace cnn::cuda {

class CudnnContext {
 public:
  CudnnContext(cudaStream_t stream, std::shared_ptr<DeviceAllocator> allocator,
               size_t workspace_limit);
  ~CudnnContext();
  CudnnContext(const CudnnContext&) = delete;
  CudnnContext& operator=(const CudnnContext&) = delete;

  cudnnHandle_t handle() const { return handle_; }
  size_t workspace_limit() const { return workspace_limit_; }
  // A device buffer of at least `bytes` (<= the limit), valid until the next call. Throws
  // OutOfDeviceMemory when the GPU cannot give it; the previous buffer is gone then.
  void* workspace(size_t bytes);

  // The plan cached under `key`, made by `make` the first time.
  template <class Plan>
  Plan& plan(const std::string& key, const std::function<std::unique_ptr<Plan>()>& make) {
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      std::unique_ptr<Plan> p = make();
      it = plans_
               .emplace(key, std::shared_ptr<void>(p.release(),
                                                   [](void* q) { delete static_cast<Plan*>(q); }))
               .first;
    }
    return *static_cast<Plan*>(it->second.get());
  }

  // The algorithm chosen for a pass and shape, by an id the op family defines (empty when
  // none is recorded), for the reports' implementation choices.
  void record_algorithm(const std::string& id, const std::string& algorithm) {
    algorithms_[id] = algorithm;
  }
  std::string algorithm(const std::string& id) const {
    const auto it = algorithms_.find(id);
    return it == algorithms_.end() ? std::string() : it->second;
  }

  // Records a choice (printed once to stderr when verbose).
  void log(const std::string& line);
  const std::vector<std::string>& log_lines() const { return log_; }
  bool verbose = true;
  // Convolutions may use TF32 tensor cores (CUDNN_TENSOR_OP_MATH); otherwise they are
  // held to FP32 (CUDNN_FMA_MATH). Set before the first convolution: plans keep it.
  bool tf32 = false;
  // Only algorithms and modes cuDNN documents as deterministic (run to run, on one GPU):
  // convolution algorithms whose perf entry says CUDNN_DETERMINISTIC, and
  // CUDNN_POOLING_MAX_DETERMINISTIC for max pooling. Set before the first use: plans keep it.
  bool deterministic = false;

 private:
  cudnnHandle_t handle_ = nullptr;
  std::shared_ptr<DeviceAllocator> allocator_;
  size_t workspace_limit_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<std::string, std::shared_ptr<void>> plans_;
  std::vector<std::string> log_;
  std::map<std::string, std::string> algorithms_;
};

// Whether an NCHW tensor of these dimensions fits a legacy cuDNN tensor descriptor, which
// counts its elements in 32 bits (a larger one is refused with a bare NOT_SUPPORTED): the
// op families' cuDNN support checks ask, so that native takes such a layer.
bool descriptor_fits(int64_t n, int64_t c, int64_t h, int64_t w);

// RAII descriptors for the legacy cuDNN API. A tensor that does not fit a descriptor is a
// ConfigError that names its dimensions.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(int64_t n, int64_t c, int64_t h, int64_t w);
  ~TensorDesc();
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

}  // namespace cnn::cuda
