// CNNK_HD marks small functions that both host and device code call, so the CPU
// reference and the CUDA kernels share one definition (shapes, random numbers).
#pragma once

#if defined(__CUDACC__)
#define CNNK_HD __host__ __device__ __forceinline__
#else
#define CNNK_HD inline
#endif
