#include "engine/backend/cuda/cuda_check.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace cnn::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the process can report and go on
  std::string msg = fmt::format("{} failed at {}:{}: {} ({})", call, file, line,
                                cudaGetErrorString(err), cudaGetErrorName(err));
  if (err == cudaErrorMemoryAllocation)
    msg += "; the GPU is out of memory: try a smaller --batch-size";
  throw DeviceError(msg);
}

void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line) {
  throw DeviceError(fmt::format("{} failed at {}:{}: {} ({})", call, file, line,
                                cublasGetStatusString(st), cublasGetStatusName(st)));
}

std::string cudnn_status_text(cudnnStatus_t st) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return fmt::format("{}{}{}", cudnnGetErrorString(st), detail[0] ? ": " : "", detail);
}

void throw_cudnn_error(cudnnStatus_t st, const char* call, const char* file, int line) {
  throw DeviceError(fmt::format("{} failed at {}:{}: {}", call, file, line, cudnn_status_text(st)));
}

}  // namespace cnn::cuda
