// The simulator's stand-in for <cublas_v2.h>: the types, constants and calls the engine
// uses (engine/backend/cuda/cuda_backend.cpp, engine/ops/dense/dense_cublas.cpp), with
// cuBLAS's names, values and signatures, computed on the CPU by tests/sim/sim_cublas.cpp on
// the simulated device's streams.
//
// What it holds its callers to, as cuBLAS does: dimensions and leading dimensions that fit
// (CUBLAS_STATUS_INVALID_VALUE otherwise), scaling factors that are host values (the host
// pointer mode, the default) read at call time, work in the handle's stream (so a capture
// records it), and a workspace of device memory. Beyond cuBLAS, it refuses matrix
// pointers that are not device memory covering the whole matrix (a crash or silent garbage
// on a GPU), with a message on stderr. Results are FP32 whatever the math mode.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};
enum cublasOperation_t {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_OP_C = 2,
};
enum cublasMath_t {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
};

struct cublasContext;
using cublasHandle_t = cublasContext*;

cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
// As in cuBLAS, also drops a workspace set by cublasSetWorkspace.
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t streamId);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
// Not used by the engine; lets the simulator's tests see the recorded math mode.
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode);
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace,
                                  size_t workspaceSizeInBytes);
const char* cublasGetStatusString(cublasStatus_t status);
const char* cublasGetStatusName(cublasStatus_t status);

// C = alpha * op(A) * op(B) + beta * C, column-major; op(A) is m x k, op(B) k x n, C m x n.
// alpha and beta are host pointers; with beta == 0, C is not read.
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc);
