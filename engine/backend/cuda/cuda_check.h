// Checking every CUDA, cuBLAS and cuDNN call: a failure throws cnn::DeviceError naming
// the call, the file and line, and the library's own message.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>

namespace cnn::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* call, const char* file,
                                     int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t st, const char* call, const char* file, int line);
// A failed cuDNN call's status name and cuDNN's own message for it (which reading clears).
std::string cudnn_status_text(cudnnStatus_t st);

inline void check(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, call, file, line);
}
inline void check(cublasStatus_t st, const char* call, const char* file, int line) {
  if (st != CUBLAS_STATUS_SUCCESS) throw_cublas_error(st, call, file, line);
}
inline void check(cudnnStatus_t st, const char* call, const char* file, int line) {
  if (st != CUDNN_STATUS_SUCCESS) throw_cudnn_error(st, call, file, line);
}

}  // namespace cnn::cuda

// CNN_CUDA(cudaMemcpyAsync(...)); CNN_CUDA(cublasSgemm(...)); CNN_CUDA(cudnnXxx(...)).
#define CNN_CUDA(call) ::cnn::cuda::check((call), #call, __FILE__, __LINE__)
