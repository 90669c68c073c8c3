// The simulator's stand-in for the profiler range calls: accepted, and nothing is recorded.
#pragma once

#include "cuda_runtime_api.h"

cudaError_t cudaProfilerStart();
cudaError_t cudaProfilerStop();
