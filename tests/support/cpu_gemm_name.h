// The name the CPU backend gives its convolutions' and dense layers' implementation in
// this build: "openblas", or "gemm-loops" in a build without OpenBLAS (CNN_CPU_BLAS=none,
// as on the GPU machine). Read off cpu_gemm_description(), so that the two must agree.
#pragma once

#include <string>

#include "engine/ops/cpu_gemm.h"

namespace cnn::test {

inline std::string cpu_gemm_impl_name() {
  return cpu_gemm_description().rfind("OpenBLAS", 0) == 0 ? "openblas" : "gemm-loops";
}

}  // namespace cnn::test
