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

// A library call that fails may leave the error of its own failed launch in the runtime
// (cuDNN and cuBLAS launch kernels of their own): cleared here, as throw_cuda_error clears
// its own, so that the next launch checked does not report it as its error. A sticky error
// (a broken context) stays, and the next synchronize reports it.
void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line) {
  cudaGetLastError();
  throw DeviceError(fmt::format("{} failed at {}:{}: {} ({})", call, file, line,
                                cublasGetStatusString(st), cublasGetStatusName(st)));
}

std::string cudnn_status_text(cudnnStatus_t st) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return fmt::format("{}{}{}", cudnnGetErrorString(st), detail[0] ? ": " : "", detail);
}

void throw_cudnn_error(cudnnStatus_t st, const char* call, const char* file, int line) {
  cudaGetLastError();
  throw DeviceError(fmt::format("{} failed at {}:{}: {}", call, file, line, cudnn_status_text(st)));
}

}  // namespace cnn::cuda
