// Controls of the simulated cuDNN (sim_cudnn*.cpp), for the suites that provoke answers a
// real cuDNN gives only on some GPUs and versions.
#pragma once

namespace cnnk_sim {

// While set, the algorithm that the heuristics rank first for each convolution pass
// refuses to run: the pass's call fails with CUDNN_STATUS_NOT_SUPPORTED_SHAPE and enqueues
// nothing, as a real cuDNN may when a listed kernel turns a problem down at launch. Its
// heuristics entry and workspace query still answer as before.
void set_cudnn_first_algorithm_refuses_to_run(bool refuses);

}  // namespace cnnk_sim
