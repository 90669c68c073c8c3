// Convolution launchers: forward, backward data and backward filter, each an implicit
// GEMM (conv2d_igemm.cuh, FP32 or TF32) or, for small reductions, a direct kernel
// (conv2d_direct.cuh); the choice between them; and the fixed-order reductions that keep
// split GEMMs deterministic: the split-reduction partials summed in order (the forward's
// with its bias and activation). The bias gradient is bias.cu's.
#include "cnnk/conv2d.h"
#include "conv2d_direct.cuh"
#include "conv2d_igemm.cuh"

namespace cnnk {
namespace {

using namespace conv2d_detail;

template <class Math, class Problem>
cudaError_t launch_tiles(const Problem& pb, int64_t fast, int64_t slow, int chunks,
                         cudaStream_t stream) {
  using Tile = typename Math::Tile;
  const dim3 grid(ceil_div(fast, Tile::kTileF), ceil_div(slow, Tile::kTileS),
                  static_cast<unsigned>(chunks));
  detail::launch(implicit_gemm_kernel<Problem, Math>, grid, kThreads, 0, stream, pb);
  return cudaGetLastError();
}

// v: a launchable implicit-GEMM variant (gemm_launchable).
template <class Problem>
cudaError_t launch_gemm(const Problem& pb, int64_t fast, int64_t slow, int chunks, ConvVariant v,
                        cudaStream_t stream) {
  if (v == ConvVariant::IgemmTf32) return launch_tiles<Tf32Math>(pb, fast, slow, chunks, stream);
  if (v == ConvVariant::IgemmTf32x128)
    return launch_tiles<Tf32Math128>(pb, fast, slow, chunks, stream);
  if (v == ConvVariant::Igemm128) return launch_tiles<FmaMath128>(pb, fast, slow, chunks, stream);
  return launch_tiles<FmaMath>(pb, fast, slow, chunks, stream);
}

bool is_gemm(ConvVariant v) {
  return v == ConvVariant::Igemm || v == ConvVariant::Igemm128 || v == ConvVariant::IgemmTf32 ||
         v == ConvVariant::IgemmTf32x128;
}

// Checks a resolved implicit-GEMM variant: cudaSuccess, or why it cannot launch.
cudaError_t gemm_launchable(ConvVariant v) {
  if (v == ConvVariant::Igemm || v == ConvVariant::Igemm128) return cudaSuccess;
  if (v == ConvVariant::IgemmTf32 || v == ConvVariant::IgemmTf32x128)
    return conv2d_device_has_tf32() ? cudaSuccess : cudaErrorNotSupported;
  return cudaErrorInvalidValue;
}

// dw[i] = sum over z = 0 .. splits-1, in that order, of partial[z][i].
__global__ void __launch_bounds__(kThreads)
    sum_partials_kernel(const float* __restrict__ partial, int splits, int64_t count,
                        float* __restrict__ dw) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    float acc = 0.f;
    for (int z = 0; z < splits; ++z) acc += partial[int64_t(z) * count + i];
    dw[i] = acc;
  }
}

// y[i] = act(sum over z = 0 .. splits-1, in that order, of partial[z][i] + b[k]), where
// element i of y [N][K][P*Q] lies in channel k = (i / PQ) % K: the split forward's
// epilogue, as the unsplit GEMM's (bias added to the whole sum, then the activation).
// count < 2^30 (fill_split).
__global__ void __launch_bounds__(kThreads)
    sum_partials_bias_act_kernel(const float* __restrict__ partial, int splits, int count,
                                 const float* __restrict__ b, FastDivisor by_pq, FastDivisor by_k,
                                 ActKind act, float* __restrict__ y) {
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < count; i += stride) {
    float acc = partial[i];
    for (int z = 1; z < splits; ++z) acc += partial[int64_t(z) * count + i];
    if (b) {
      int n, kk;
      by_k.divmod(by_pq.div(i), n, kk);  // i / PQ = n * K + k
      acc += b[kk];
    }
    y[i] = act_detail::activate(act, acc);
  }
}

// Grid for a grid-stride loop over `count` elements.
unsigned stride_grid(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

}  // namespace

Support conv2d_supports(const Conv2dGeometry& g) {
  const char* why = geometry_problem(g);
  return why ? Support::no(why) : Support::yes();
}

ConvVariant conv2d_variant(ConvPass pass, const Conv2dGeometry& g, const ConvOptions& o) {
  if (o.variant != ConvVariant::Auto) return o.variant;
  const ConvVariant gemm =
      o.tf32 ? (o.large_tiles ? ConvVariant::IgemmTf32x128 : ConvVariant::IgemmTf32)
             : (o.large_tiles ? ConvVariant::Igemm128 : ConvVariant::Igemm);
  switch (pass) {
    case ConvPass::Forward:
      return direct_forward_plan(g).why ? gemm : ConvVariant::Direct;
    case ConvPass::BackwardFilter:
      return direct_filter_plan(g).why ? gemm : ConvVariant::Direct;
    case ConvPass::BackwardData:
      break;
  }
  return gemm;
}

bool conv2d_device_has_tf32() {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major >= 8;
}

const char* conv2d_variant_name(ConvVariant v) {
  switch (v) {
    case ConvVariant::Auto:
      return "auto";
    case ConvVariant::Direct:
      return "direct";
    case ConvVariant::Igemm:
      return "igemm";
    case ConvVariant::IgemmTf32:
      return "igemm-tf32";
    case ConvVariant::Igemm128:
      return "igemm-128";
    case ConvVariant::IgemmTf32x128:
      return "igemm-tf32-128";
  }
  return "?";
}

Support conv2d_variant_supports(ConvPass pass, const Conv2dGeometry& g, ConvVariant v) {
  if (const char* why = geometry_problem(g)) return Support::no(why);
  if (v != ConvVariant::Direct) return Support::yes();
  const char* why = nullptr;
  switch (pass) {
    case ConvPass::Forward:
      why = direct_forward_plan(g).why;
      break;
    case ConvPass::BackwardFilter:
      why = direct_filter_plan(g).why;
      break;
    case ConvPass::BackwardData:
      why = "direct: no backward-data kernel (a first layer needs no input gradient)";
      break;
  }
  return why ? Support::no(why) : Support::yes();
}

namespace {
// The workspace of `partials` partial results of `elements` floats each: none for one.
size_t partials_bytes(int partials, int64_t elements) {
  if (partials <= 1) return 0;
  return static_cast<size_t>(partials) * static_cast<size_t>(elements) * sizeof(float);
}
// A GEMM's rows, n * h * w or n * p * q, as the kernels' int: geometry_problem keeps the
// product below 2^30, but with a zero factor the other two alone may pass 2^31, so the
// product is formed in 64 bits.
int rows(int n, int h, int w) { return static_cast<int>(int64_t(n) * h * w); }
}  // namespace

size_t conv2d_forward_workspace_bytes(const Conv2dGeometry& g, const ConvOptions& o) {
  if (geometry_problem(g) || !is_gemm(conv2d_variant(ConvPass::Forward, g, o))) return 0;
  return partials_bytes(forward_split(g).splits, g.output_size());
}

size_t conv2d_backward_data_workspace_bytes(const Conv2dGeometry& g, const ConvOptions& o) {
  if (geometry_problem(g) || !is_gemm(conv2d_variant(ConvPass::BackwardData, g, o))) return 0;
  return partials_bytes(data_split(g).splits, g.input_size());
}

cudaError_t conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b,
                           float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                           ActKind act, const ConvOptions& o) {
  if (geometry_problem(g)) return cudaErrorInvalidValue;
  if (g.output_size() == 0) return cudaSuccess;
  const size_t need = conv2d_forward_workspace_bytes(g, o);
  if (need > 0 && (workspace == nullptr || workspace_bytes < need)) return cudaErrorInvalidValue;
  const ConvVariant v = conv2d_variant(ConvPass::Forward, g, o);
  if (v == ConvVariant::Direct) {
    const DirectForwardPlan plan = direct_forward_plan(g);
    if (plan.why) return cudaErrorInvalidValue;
    return direct_forward(plan, g, x, w, b, act, y, stream);
  }
  if (const cudaError_t err = gemm_launchable(v); err != cudaSuccess) return err;
  ForwardProblem pb;
  static_cast<ConvShape&>(pb) = conv_shape(g);
  pb.x = x;
  pb.w = w;
  pb.b = b;
  pb.y = y;
  pb.act = act;
  pb.m = rows(g.n, g.p, g.q);
  const ReductionSplit split = forward_split(g);
  pb.chunk = split.chunk;
  pb.partial = split.splits > 1 ? static_cast<float*>(workspace) : nullptr;
  pb.by_rs = FastDivisor(pb.rs);
  pb.by_s = FastDivisor(g.s);
  pb.by_pq = FastDivisor(pb.pq);
  if (const cudaError_t err = launch_gemm(pb, pb.m, g.k, split.splits, v, stream);
      err != cudaSuccess || split.splits == 1)
    return err;
  const int count = static_cast<int>(g.output_size());  // < 2^30 when split
  detail::launch(sum_partials_bias_act_kernel, stride_grid(count), kThreads, 0, stream,
                 static_cast<const float*>(pb.partial), split.splits, count, b, FastDivisor(pb.pq),
                 FastDivisor(g.k), act, y);
  return cudaGetLastError();
}

namespace {
template <bool kUnitStride>
BackwardDataProblemT<kUnitStride> backward_data_problem(const Conv2dGeometry& g, const float* dy,
                                                        const float* w, float* out,
                                                        const ReductionSplit& split) {
  BackwardDataProblemT<kUnitStride> pb;
  static_cast<ConvShape&>(pb) = conv_shape(g);
  pb.dy = dy;
  pb.w = w;
  pb.out = out;
  pb.krs = g.k * g.r * g.s;
  pb.m = rows(g.n, g.h, g.w);
  pb.chunk = split.chunk;
  pb.by_rs = FastDivisor(pb.rs);
  pb.by_s = FastDivisor(g.s);
  pb.by_sh = FastDivisor(g.stride_h);
  pb.by_sw = FastDivisor(g.stride_w);
  pb.by_hw = FastDivisor(pb.hw);
  return pb;
}
}  // namespace

cudaError_t conv2d_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                 float* dx, void* workspace, size_t workspace_bytes,
                                 cudaStream_t stream, const ConvOptions& o) {
  if (geometry_problem(g)) return cudaErrorInvalidValue;
  if (g.input_size() == 0) return cudaSuccess;
  const size_t need = conv2d_backward_data_workspace_bytes(g, o);
  if (need > 0 && (workspace == nullptr || workspace_bytes < need)) return cudaErrorInvalidValue;
  const ConvVariant v = conv2d_variant(ConvPass::BackwardData, g, o);
  if (const cudaError_t err = gemm_launchable(v); err != cudaSuccess) return err;
  const ReductionSplit split = data_split(g);
  float* out = split.splits > 1 ? static_cast<float*>(workspace) : dx;
  const int64_t m = int64_t(g.n) * g.h * g.w;
  const cudaError_t err = g.stride_h == 1 && g.stride_w == 1
                              ? launch_gemm(backward_data_problem<true>(g, dy, w, out, split), m,
                                            g.c, split.splits, v, stream)
                              : launch_gemm(backward_data_problem<false>(g, dy, w, out, split), m,
                                            g.c, split.splits, v, stream);
  if (err != cudaSuccess || split.splits == 1) return err;
  detail::launch(sum_partials_kernel, stride_grid(g.input_size()), kThreads, 0, stream,
                 static_cast<const float*>(out), split.splits, g.input_size(), dx);
  return cudaGetLastError();
}

namespace {
// How many partial filter gradients the variant sums (1: none, dw written directly), or
// 0 when the variant cannot run backward filter on g.
int filter_partials(const Conv2dGeometry& g, ConvVariant v) {
  if (v == ConvVariant::Direct) {
    const DirectFilterPlan plan = direct_filter_plan(g);
    return plan.why ? 0 : plan.splits;
  }
  if (is_gemm(v)) return filter_split(g).splits;
  return 0;
}
}  // namespace

size_t conv2d_backward_filter_workspace_bytes(const Conv2dGeometry& g, const ConvOptions& o) {
  if (geometry_problem(g)) return 0;
  return partials_bytes(filter_partials(g, conv2d_variant(ConvPass::BackwardFilter, g, o)),
                        g.filter_size());
}

cudaError_t conv2d_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                   float* dw, void* workspace, size_t workspace_bytes,
                                   cudaStream_t stream, const ConvOptions& o) {
  if (geometry_problem(g)) return cudaErrorInvalidValue;
  const ConvVariant v = conv2d_variant(ConvPass::BackwardFilter, g, o);
  const int partials = filter_partials(g, v);
  if (partials == 0) return cudaErrorInvalidValue;
  const size_t need = conv2d_backward_filter_workspace_bytes(g, o);
  if (need > 0 && (workspace == nullptr || workspace_bytes < need)) return cudaErrorInvalidValue;
  if (v != ConvVariant::Direct) {
    if (const cudaError_t err = gemm_launchable(v); err != cudaSuccess) return err;
  }
  if (g.filter_size() > 0) {
    float* out = partials > 1 ? static_cast<float*>(workspace) : dw;
    cudaError_t err = cudaSuccess;
    // Every element of dw (or of each partial) is stored even when N*P*Q is 0: zeros.
    if (v == ConvVariant::Direct) {
      err = direct_filter(direct_filter_plan(g), g, x, dy, out, stream);
    } else {
      const ReductionSplit split = filter_split(g);
      BackwardFilterProblem pb;
      static_cast<ConvShape&>(pb) = conv_shape(g);
      pb.x = x;
      pb.dy = dy;
      pb.out = out;
      pb.npq = rows(g.n, g.p, g.q);
      pb.chunk = split.chunk;
      // P*Q may be 0 (a filter larger than the padded input): then nothing is divided.
      pb.by_pq = FastDivisor(pb.pq);
      pb.by_q = FastDivisor(g.q);
      err = launch_gemm(pb, pb.crs, g.k, split.splits, v, stream);
    }
    if (err != cudaSuccess) return err;
    if (partials > 1) {
      detail::launch(sum_partials_kernel, stride_grid(g.filter_size()), kThreads, 0, stream, out,
                     partials, g.filter_size(), dw);
      err = cudaGetLastError();
      if (err != cudaSuccess) return err;
    }
  }
  return cudaSuccess;
}

}  // namespace cnnk
