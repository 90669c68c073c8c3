// Which GEMM the CPU backend's convolutions and dense layers run, for the device line and
// the JSON records. It matters to any CPU figure: OpenBLAS built with DYNAMIC_ARCH
// (Debian's) picks its kernels when it loads, from the CPU or from OPENBLAS_CORETYPE, and
// on this project's development machines (AVX-512) its own pick, Cooperlake, runs the
// training step's convolutions about 1.4x faster than the Haswell (AVX2) kernels that the
// machines' environment sets.
#pragma once

#include <string>

namespace cnn {

// "OpenBLAS 0.3.21 (Cooperlake kernels)", or "plain loops (built without OpenBLAS)".
std::string cpu_gemm_description();

}  // namespace cnn
