// The simulated cuBLAS (include/cublas_v2.h): SGEMM by plain loops with double
// accumulation, on the simulated device's streams (cnnk_sim::enqueue), so that a captured
// GEMM runs at each replay with the arguments it was given.
#include <cstdint>
#include <cstdio>
#include <string>

#include "cnnk_sim_device.h"
#include "cublas_v2.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  // Recorded only: the GEMMs here need no scratch memory.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace {

// cuBLAS has no error-message call: the reason goes to stderr.
cublasStatus_t refuse(cublasStatus_t status, const char* call, const std::string& why) {
  std::fprintf(stderr, "simulated cuBLAS: %s: %s\n", call, why.c_str());
  return status;
}

// One operand as stored: `rows` x `cols` column-major with leading dimension `ld`.
struct Stored {
  int rows, cols, ld;
  // The bytes from the first element to the last one, inclusive (0 when empty).
  size_t span_bytes() const {
    if (rows == 0 || cols == 0) return 0;
    return (static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows)) *
           sizeof(float);
  }
};

// The operand that op(X) (`rows` x `cols`) is read from.
Stored stored(cublasOperation_t op, int rows, int cols, int ld) {
  return op == CUBLAS_OP_N ? Stored{rows, cols, ld} : Stored{cols, rows, ld};
}

bool known_op(cublasOperation_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

// Element (i, j) of op(X), for X stored column-major with leading dimension ld. For real
// matrices the conjugate transpose is the transpose.
float element(const float* x, cublasOperation_t op, int ld, int i, int j) {
  return op == CUBLAS_OP_N ? x[static_cast<int64_t>(j) * ld + i]
                           : x[static_cast<int64_t>(i) * ld + j];
}

// What a GEMM needs when it runs: every value by copy, as a captured node keeps them.
struct Gemm {
  cublasOperation_t transa, transb;
  int m, n, k;
  float alpha, beta;
  const float* a;
  int lda;
  const float* b;
  int ldb;
  float* c;
  int ldc;

  Stored stored_a() const { return stored(transa, m, k, lda); }
  Stored stored_b() const { return stored(transb, k, n, ldb); }
  Stored stored_c() const { return Stored{m, n, ldc}; }
  // BLAS does not read A and B when alpha is 0.
  bool reads_ab() const { return alpha != 0.0f; }

  // The matrices it touches are device memory covering them: "" when so.
  std::string memory_problem() const {
    auto covers = [](const void* p, const Stored& s) {
      return s.span_bytes() == 0 || cnnk_sim::is_device_memory(p, s.span_bytes());
    };
    auto describe = [](const char* name, const Stored& s) {
      return std::string(name) + " (" + std::to_string(s.rows) + " x " + std::to_string(s.cols) +
             ", ld " + std::to_string(s.ld) + ", " + std::to_string(s.span_bytes()) +
             " bytes) is not device memory covering the matrix";
    };
    if (reads_ab() && !covers(a, stored_a())) return describe("A", stored_a());
    if (reads_ab() && !covers(b, stored_b())) return describe("B", stored_b());
    if (!covers(c, stored_c())) return describe("C", stored_c());
    return "";
  }

  void run() const {
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double sum = 0.0;
        if (reads_ab())
          for (int l = 0; l < k; ++l)
            sum += static_cast<double>(element(a, transa, lda, i, l)) *
                   static_cast<double>(element(b, transb, ldb, l, j));
        float& out = c[static_cast<int64_t>(j) * ldc + i];
        double value = static_cast<double>(alpha) * sum;
        // beta == 0: C may hold anything (NaN), so it is not read.
        if (beta != 0.0f) value += static_cast<double>(beta) * static_cast<double>(out);
        out = static_cast<float>(value);
      }
  }
};

// The shape checks cuBLAS itself makes: "" when the arguments are acceptable.
std::string shape_problem(cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                          int lda, int ldb, int ldc) {
  if (!known_op(transa) || !known_op(transb)) return "transa or transb is not a cublasOperation_t";
  if (m < 0 || n < 0 || k < 0)
    return "negative dimension (m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " +
           std::to_string(k) + ")";
  const int a_rows = transa == CUBLAS_OP_N ? m : k, b_rows = transb == CUBLAS_OP_N ? k : n;
  auto too_small = [](const char* name, int ld, int rows) {
    return std::string(name) + " " + std::to_string(ld) + " is less than max(1, " +
           std::to_string(rows) + "), the rows of the matrix as stored";
  };
  if (lda < (a_rows > 1 ? a_rows : 1)) return too_small("lda", lda, a_rows);
  if (ldb < (b_rows > 1 ? b_rows : 1)) return too_small("ldb", ldb, b_rows);
  if (ldc < (m > 1 ? m : 1)) return too_small("ldc", ldc, m);
  return "";
}

// The scaling factors must be host values: the handle is in the host pointer mode.
std::string scalar_problem(const float* alpha, const float* beta) {
  if (!alpha || !beta) return "alpha or beta is null";
  if (cnnk_sim::is_device_memory(alpha, sizeof(float)) ||
      cnnk_sim::is_device_memory(beta, sizeof(float)))
    return "alpha or beta is device memory, but the pointer mode is host: they must be host "
           "values";
  return "";
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (!handle) return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate", "null handle pointer");
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t streamId) {
  if (!handle) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream", "null handle");
  handle->stream = streamId;
  handle->workspace = nullptr;  // cuBLAS goes back to its default workspace pool here
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetMathMode", "null handle");
  switch (mode) {
    case CUBLAS_DEFAULT_MATH:
    case CUBLAS_TENSOR_OP_MATH:
    case CUBLAS_PEDANTIC_MATH:
    case CUBLAS_TF32_TENSOR_OP_MATH:
      handle->math = mode;  // recorded; the GEMMs here are FP32 whatever it says
      return CUBLAS_STATUS_SUCCESS;
  }
  return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasSetMathMode", "not a cublasMath_t");
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!handle) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "cublasGetMathMode", "null handle");
  if (!mode) return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasGetMathMode", "null mode pointer");
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace,
                                  size_t workspaceSizeInBytes) {
  const char* call = "cublasSetWorkspace";
  if (!handle) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, call, "null handle");
  if (workspaceSizeInBytes > 0) {
    if (!cnnk_sim::is_device_memory(workspace, workspaceSizeInBytes))
      return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                    "the workspace is not device memory of " +
                        std::to_string(workspaceSizeInBytes) + " bytes");
    // cuBLAS documents a 256-byte alignment for the workspace.
    if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
      return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "the workspace is not 256-byte aligned");
  }
  handle->workspace = workspace;
  handle->workspace_bytes = workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "license error";
  }
  return "unknown cuBLAS status";
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
#define CNN_SIM_CUBLAS_NAME(s) \
  case s:                      \
    return #s;
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_SUCCESS)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_NOT_INITIALIZED)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_ALLOC_FAILED)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_INVALID_VALUE)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_ARCH_MISMATCH)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_MAPPING_ERROR)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_EXECUTION_FAILED)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_INTERNAL_ERROR)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_NOT_SUPPORTED)
    CNN_SIM_CUBLAS_NAME(CUBLAS_STATUS_LICENSE_ERROR)
#undef CNN_SIM_CUBLAS_NAME
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  const char* call = "cublasSgemm";
  if (!handle) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, call, "null handle");
  const std::string bad_shape = shape_problem(transa, transb, m, n, k, lda, ldb, ldc);
  if (!bad_shape.empty()) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, bad_shape);
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;  // nothing to do, nothing read
  const std::string bad_scalar = scalar_problem(alpha, beta);
  if (!bad_scalar.empty()) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, bad_scalar);
  // The host pointer mode: the values as they are now, not when the work runs.
  const Gemm g{transa, transb, m, n, k, *alpha, *beta, A, lda, B, ldb, C, ldc};
  // Beyond cuBLAS, which would crash or compute garbage: memory that is not the device's.
  const std::string bad_memory = g.memory_problem();
  if (!bad_memory.empty()) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, bad_memory);
  const cudaError_t queued = cnnk_sim::enqueue(handle->stream, call, [g] {
    // A replay after the memory was freed: reported as a failed kernel would be.
    const std::string gone = g.memory_problem();
    if (gone.empty())
      g.run();
    else
      cnnk_sim::report(cudaErrorLaunchFailure, "simulated cuBLAS: cublasSgemm at replay: " + gone);
  });
  if (queued != cudaSuccess)
    return refuse(CUBLAS_STATUS_EXECUTION_FAILED, call,
                  std::string("the stream refused the work: ") + cudaGetErrorString(queued));
  return CUBLAS_STATUS_SUCCESS;
}
