// Controls of the simulated cuDNN (sim_cudnn*.cpp), for the suites that provoke answers a
// real cuDNN gives only on some GPUs and versions.
#pragma once

#include <cudnn.h>

namespace cnnk_sim {

// While not CUDNN_STATUS_SUCCESS (the default), the algorithm that the heuristics rank
// first for each convolution pass fails with `status` when asked to run and enqueues
// nothing: with CUDNN_STATUS_NOT_SUPPORTED_SHAPE as a real cuDNN may when a listed kernel
// turns a problem down at launch, with CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH as one
// built for other GPUs would. Its heuristics entry and workspace query answer as before.
void set_cudnn_first_algorithm_run_status(cudnnStatus_t status);

}  // namespace cnnk_sim
