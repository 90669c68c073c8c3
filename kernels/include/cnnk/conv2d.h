// Convolution kernels (NCHW activations, OIHW filters), handwritten: implicit GEMM tiled
// through shared memory with register blocking (FP32 or TF32 tensor cores), and a direct
// kernel for the small reductions of first layers. Semantics are those of
// cnn::ref::conv2d_* (engine/ops/conv2d/conv2d.h), the oracle the tests compare against.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "cnnk/activation.h"
#include "cnnk/geometry.h"
#include "cnnk/status.h"

namespace cnnk {

// Native support: any stride and asymmetric padding; dilation must be 1 (cuDNN covers
// dilated convolutions).
Support conv2d_supports(const Conv2dGeometry& g);

// The kernels behind each pass. A pure function of the geometry and the options picks
// one (conv2d_variant), so callers never choose, and reports can say which ran:
//   direct      forward and backward filter of a small reduction C*R*S (a first layer,
//               1 channel 7x7): one image's input tile and halo and the block's filters
//               staged in shared memory once, a register block of pixels x filters per
//               thread. Exact FP32, so it is used whether or not TF32 is allowed.
//   igemm       the implicit GEMM (64x64x16 tiles, 4x4 per thread), strict FP32.
//   igemm-tf32  the same tiles multiplied on tensor cores (wmma m16n16k8, inputs rounded
//               to TF32: 10 mantissa bits, products and sums in FP32); only with tf32.
//   igemm-128   the implicit GEMM on 128x128x8 tiles, 8x8 per thread, strict FP32: fewer
//               shared-memory loads per FMA, four times fewer blocks; only with
//               large_tiles (opt-in until the H200 has timed it against igemm).
//   igemm-tf32-128  the 128x128x8 tiles on tensor cores, each warp a 32 x 64 piece (8
//               mma per 6 fragment loads, against igemm-tf32's 2 per 3); only with tf32
//               and large_tiles.
// Backward data has no direct variant: the executor never asks for a first layer's input
// gradient, so the implicit GEMM serves every geometry there.
enum class ConvPass : int { Forward = 0, BackwardData = 1, BackwardFilter = 2 };
enum class ConvVariant : int {
  Auto = 0,
  Direct = 1,
  Igemm = 2,
  IgemmTf32 = 3,
  Igemm128 = 4,
  IgemmTf32x128 = 5,
};

struct ConvOptions {
  // Allows TF32 tensor-core math (opt-in: about 3 decimal digits per product instead of
  // 7). Needs compute capability 8.0: on older devices the launchers return
  // cudaErrorNotSupported.
  bool tf32 = false;
  // Implicit GEMMs on 128x128x8 tiles instead of 64x64x16: igemm-128 in strict FP32,
  // igemm-tf32-128 with tf32. The direct kernel still serves small reductions.
  bool large_tiles = false;
  // Auto: conv2d_variant decides. Anything else forces that variant (the tests run every
  // variant on every shape); a forced variant that cannot run the pass or the geometry
  // makes the launcher return cudaErrorInvalidValue.
  ConvVariant variant = ConvVariant::Auto;
};

// The variant a launcher runs for (pass, g, o): never Auto. Needs no device.
ConvVariant conv2d_variant(ConvPass pass, const Conv2dGeometry& g, const ConvOptions& o = {});
// "direct", "igemm", "igemm-tf32", "igemm-128", "igemm-tf32-128" ("auto" for Auto).
const char* conv2d_variant_name(ConvVariant v);
// Whether `v` can run `pass` on `g`, and why not (direct: a small reduction that fits
// shared memory, forward and backward filter only).
Support conv2d_variant_supports(ConvPass pass, const Conv2dGeometry& g, ConvVariant v);
// Whether the current device has the TF32 tensor cores the TF32 variants need (compute
// capability 8.0 or later); false when the query fails, leaving no error behind for the
// next launch's cudaGetLastError to find.
bool conv2d_device_has_tf32();

// Forward and backward data split their reduction over several blocks when the output
// has too few tiles to fill the GPU (small batches), each chunk's partial result going to
// `workspace` and a second kernel summing them in a fixed order (deterministic). The
// workspace depends on the geometry and the variant: ask with the same options as the
// launch; 0 bytes means none (the pointer may then be null), and one too small or
// missing makes the launcher return cudaErrorInvalidValue.
size_t conv2d_forward_workspace_bytes(const Conv2dGeometry& g, const ConvOptions& o = {});
size_t conv2d_backward_data_workspace_bytes(const Conv2dGeometry& g, const ConvOptions& o = {});

// y = act(conv(x, w) + b) (b may be null): the activation is applied in the epilogue, so
// the result equals conv2d_forward followed by activation_forward, bit for bit.
cudaError_t conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b,
                           float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                           ActKind act = ActKind::Linear, const ConvOptions& o = {});
// dx = conv_transpose(dy, w).
cudaError_t conv2d_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                 float* dx, void* workspace, size_t workspace_bytes,
                                 cudaStream_t stream, const ConvOptions& o = {});
// dw = sum over the batch of x (*) dy. The reduction over N*P*Q is split across blocks
// into `workspace` and summed in a fixed order, so results are deterministic. The
// workspace depends on the variant: ask with the same options as the launch. The bias
// gradient is cnnk/bias.h's, fused with the activation's backward.
size_t conv2d_backward_filter_workspace_bytes(const Conv2dGeometry& g, const ConvOptions& o = {});
cudaError_t conv2d_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                   float* dw, void* workspace, size_t workspace_bytes,
                                   cudaStream_t stream, const ConvOptions& o = {});

}  // namespace cnnk
