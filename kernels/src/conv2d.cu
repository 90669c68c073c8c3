// Convolution launchers: forward, backward data and backward filter, each an implicit
// GEMM (conv2d_igemm.cuh), plus the fixed-order reductions that make backward filter
// deterministic: the split-reduction partials summed in order, and the bias gradient.
#include "cnnk/conv2d.h"
#include "conv2d_igemm.cuh"

namespace cnnk {
namespace {

using namespace conv2d_detail;

// Fills the fields the three problems share.
template <class Problem>
void fill_common(const Conv2dGeometry& g, Problem& pb) {
  pb.c = g.c;
  pb.in_h = g.h;
  pb.in_w = g.w;
  pb.k = g.k;
  pb.r = g.r;
  pb.s = g.s;
  pb.p = g.p;
  pb.q = g.q;
  pb.sh = g.stride_h;
  pb.sw = g.stride_w;
  pb.pt = g.pad_top;
  pb.pl = g.pad_left;
  pb.rs = g.r * g.s;
  pb.crs = g.c * g.r * g.s;
  pb.hw = g.h * g.w;
  pb.pq = g.p * g.q;
}

template <class Problem>
cudaError_t launch_gemm(const Problem& pb, int64_t fast, int64_t slow, int chunks,
                        cudaStream_t stream) {
  const dim3 grid(ceil_div(fast, kTileF), ceil_div(slow, kTileS), static_cast<unsigned>(chunks));
  implicit_gemm_kernel<Problem><<<grid, kThreads, 0, stream>>>(pb);
  return cudaGetLastError();
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

cudaError_t conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b,
                           float* y, cudaStream_t stream) {
  if (geometry_problem(g)) return cudaErrorInvalidValue;
  if (g.output_size() == 0) return cudaSuccess;
  ForwardProblem pb;
  fill_common(g, pb);
  pb.x = x;
  pb.w = w;
  pb.b = b;
  pb.y = y;
  pb.m = g.n * g.p * g.q;
  return launch_gemm(pb, pb.m, g.k, 1, stream);
}

cudaError_t conv2d_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                 float* dx, cudaStream_t stream) {
  if (geometry_problem(g)) return cudaErrorInvalidValue;
  if (g.input_size() == 0) return cudaSuccess;
  BackwardDataProblem pb;
  fill_common(g, pb);
  pb.dy = dy;
  pb.w = w;
  pb.dx = dx;
  pb.krs = g.k * g.r * g.s;
  pb.m = g.n * g.h * g.w;
  return launch_gemm(pb, pb.m, g.c, 1, stream);
}

size_t conv2d_backward_filter_workspace_bytes(const Conv2dGeometry& g) {
  if (geometry_problem(g) || g.filter_size() == 0) return 0;
  const FilterSplit split = filter_split(g);
  if (split.splits <= 1) return 0;
  return static_cast<size_t>(split.splits) * static_cast<size_t>(g.filter_size()) * sizeof(float);
}

cudaError_t conv2d_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                   float* dw, float* db, void* workspace, size_t workspace_bytes,
                                   cudaStream_t stream) {
  if (geometry_problem(g)) return cudaErrorInvalidValue;
  if (g.filter_size() > 0) {
    const FilterSplit split = filter_split(g);
    const size_t need = conv2d_backward_filter_workspace_bytes(g);
    if (need > 0 && (workspace == nullptr || workspace_bytes < need)) return cudaErrorInvalidValue;
    BackwardFilterProblem pb;
    fill_common(g, pb);
    pb.x = x;
    pb.dy = dy;
    pb.out = split.splits > 1 ? static_cast<float*>(workspace) : dw;
    pb.npq = g.n * g.p * g.q;
    pb.chunk = split.chunk;
    // Every column and row is stored even when N*P*Q is 0 (then dw is all zeros).
    cudaError_t err = launch_gemm(pb, pb.crs, g.k, split.splits, stream);
    if (err != cudaSuccess) return err;
    if (split.splits > 1) {
      sum_partials_kernel<<<stride_grid(g.filter_size()), kThreads, 0, stream>>>(
          pb.out, split.splits, g.filter_size(), dw);
      err = cudaGetLastError();
      if (err != cudaSuccess) return err;
    }
  }
  if (db && g.k > 0) {
    const int pq = g.p * g.q;
    // No output pixels: every db[k] is an empty sum, 0.
    const int images = pq > 0 ? g.n : 0;
    bias_grad_kernel<<<static_cast<unsigned>(g.k), kThreads, 0, stream>>>(dy, images, g.k,
                                                                          pq > 0 ? pq : 1, db);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

}  // namespace cnnk
