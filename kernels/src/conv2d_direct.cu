// The direct convolution kernels for small reductions (see conv2d_direct.cuh for the
// plan and the tiling) and their launchers.
#include "activation_math.cuh"
#include "conv2d_direct.cuh"

namespace cnnk {
namespace conv2d_detail {
namespace {

// Stages channels 0 .. c-1 of image `xn` (c x h x w) for input rows row0 .. row0 + rows - 1
// and columns col0 .. col0 + cols - 1 into xs[ci * plane + rr * row_pitch + cc], zeros
// outside the image. Every thread of the block calls it.
__device__ void stage_input(const float* __restrict__ xn, int c, int h, int w, int row0, int col0,
                            const StagedInput& in, float* __restrict__ xs) {
  const int per_channel = in.rows * in.cols;
  const int total = c * per_channel;
  for (int i = static_cast<int>(threadIdx.x); i < total; i += kDirectThreads) {
    const int ci = i / per_channel, rem = i - ci * per_channel;
    const int rr = rem / in.cols, cc = rem - rr * in.cols;
    const int ih = row0 + rr, iw = col0 + cc;
    xs[ci * in.plane + rr * in.row_pitch + cc] =
        in_range(ih, h) && in_range(iw, w) ? xn[(int64_t(ci) * h + ih) * w + iw] : 0.f;
  }
}

struct DirectForwardArgs : ConvShape {
  const float* x;
  const float* w;
  const float* b;  // may be null
  float* y;
  int warps_k, tile_m, tile_k, m_tiles;
  StagedInput in;
  ActKind act;
};

// grid = (N * m_tiles, k_groups), block = 256, dynamic shared memory plan.smem_bytes:
// the input tile (in.floats) then the filters [crs][tile_k].
__global__ void __launch_bounds__(kDirectThreads) direct_forward_kernel(const DirectForwardArgs a) {
  CNNK_DYNAMIC_SHARED(float4, smem4);  // float4: the filters are read as float4
  float* xs = reinterpret_cast<float*>(smem4);
  float* ws = xs + a.in.floats;

  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int n = static_cast<int>(blockIdx.x) / a.m_tiles;
  const int m0 = (static_cast<int>(blockIdx.x) - n * a.m_tiles) * a.tile_m;
  const int k0 = static_cast<int>(blockIdx.y) * a.tile_k;
  const int p_lo = m0 / a.q;

  stage_input(a.x + int64_t(n) * a.c * a.in_h * a.in_w, a.c, a.in_h, a.in_w, p_lo * a.sh - a.pt,
              -a.pl, a.in, xs);
  for (int i = tid; i < a.crs * a.tile_k; i += kDirectThreads) {
    const int e = i / a.tile_k, kk = k0 + (i - e * a.tile_k);
    ws[i] = kk < a.k ? a.w[int64_t(kk) * a.crs + e] : 0.f;
  }
  __syncthreads();

  // Roles: warp (wm, wk) computes pixels m0 + wm * 128 + 32 i + lane, i < 4, and filters
  // k0 + 8 wk .. + 8. A pixel's staged window starts at row (op - p_lo) * sh, column
  // oq * sw; pixels past the image read offset 0 (in the tile) and are not stored.
  const int wk = warp % a.warps_k, wm = warp / a.warps_k;
  const int kt = wk * kFwdFilters;
  int m[kFwdPixels], off[kFwdPixels];
#pragma unroll
  for (int i = 0; i < kFwdPixels; ++i) {
    m[i] = m0 + wm * (32 * kFwdPixels) + 32 * i + lane;
    const int op = m[i] / a.q, oq = m[i] - op * a.q;
    off[i] = m[i] < a.pq ? (op - p_lo) * a.sh * a.in.row_pitch + oq * a.sw : 0;
  }

  float acc[kFwdPixels][kFwdFilters];
#pragma unroll
  for (int i = 0; i < kFwdPixels; ++i)
#pragma unroll
    for (int j = 0; j < kFwdFilters; ++j) acc[i][j] = 0.f;

  // Reduction in (c, r, s) order, one tap at a time.
  for (int ci = 0; ci < a.c; ++ci) {
    for (int ri = 0; ri < a.r; ++ri) {
      const float* xrow = xs + ci * a.in.plane + ri * a.in.row_pitch;
      const float* wrow = ws + (ci * a.r + ri) * a.s * a.tile_k + kt;
      for (int si = 0; si < a.s; ++si) {
        const float4 w0 = *reinterpret_cast<const float4*>(wrow + si * a.tile_k);
        const float4 w1 = *reinterpret_cast<const float4*>(wrow + si * a.tile_k + 4);
        const float wv[kFwdFilters] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
        for (int i = 0; i < kFwdPixels; ++i) {
          const float xv = xrow[off[i] + si];
#pragma unroll
          for (int j = 0; j < kFwdFilters; ++j) acc[i][j] = fmaf(xv, wv[j], acc[i][j]);
        }
      }
    }
  }

  // Epilogue: bias, activation; 32 lanes store 32 neighbouring pixels of one filter.
#pragma unroll
  for (int j = 0; j < kFwdFilters; ++j) {
    const int kk = k0 + kt + j;
    if (kk >= a.k) continue;
    float* yk = a.y + (int64_t(n) * a.k + kk) * a.pq;
    const float bias = a.b ? a.b[kk] : 0.f;
#pragma unroll
    for (int i = 0; i < kFwdPixels; ++i)
      if (m[i] < a.pq) yk[m[i]] = act_detail::activate(a.act, a.b ? acc[i][j] + bias : acc[i][j]);
  }
}

struct DirectFilterArgs : ConvShape {
  const float* x;
  const float* dy;
  float* out;  // [splits][K][C*R*S]
  int warps_e, tile_e, tile_k, dy_pitch, m_tiles;
  int64_t tiles, tiles_per_split;
  StagedInput in;
};

// grid = (splits, k_groups, e_groups), block = 256, dynamic shared memory plan.smem_bytes:
// the input tile (in.floats), dy [kBwdPixels][dy_pitch], pixel offsets [kBwdPixels].
__global__ void __launch_bounds__(kDirectThreads) direct_filter_kernel(const DirectFilterArgs a) {
  CNNK_DYNAMIC_SHARED(float4, smem4);
  float* xs = reinterpret_cast<float*>(smem4);
  float* dys = xs + a.in.floats;
  int* pix = reinterpret_cast<int*>(dys + kBwdPixels * a.dy_pitch);

  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int z = static_cast<int>(blockIdx.x);
  const int k0 = static_cast<int>(blockIdx.y) * a.tile_k;
  const int e0 = static_cast<int>(blockIdx.z) * a.tile_e;

  // Roles: warp (we, wk) computes taps e0 + 64 we + lane + 32 i, i < 2, and filters
  // k0 + 8 wk .. + 8. A tap past C*R*S computes on offset 0 and is not stored.
  const int we = warp % a.warps_e, wk = warp / a.warps_e;
  const int kt = wk * kBwdFilters;
  int e[kBwdTaps], eoff[kBwdTaps];
#pragma unroll
  for (int i = 0; i < kBwdTaps; ++i) {
    e[i] = e0 + we * kBwdTapsPerWarp + 32 * i + lane;
    const int ci = e[i] / a.rs, t = e[i] - ci * a.rs;
    const int ri = t / a.s, si = t - ri * a.s;
    eoff[i] = e[i] < a.crs ? ci * a.in.plane + ri * a.in.row_pitch + si : 0;
  }

  float acc[kBwdTaps][kBwdFilters];
#pragma unroll
  for (int i = 0; i < kBwdTaps; ++i)
#pragma unroll
    for (int j = 0; j < kBwdFilters; ++j) acc[i][j] = 0.f;

  // This split's tiles, in order: tile t is image t / m_tiles, pixels from
  // (t % m_tiles) * kBwdPixels.
  const int64_t t_begin = int64_t(z) * a.tiles_per_split;
  const int64_t t_end =
      a.tiles - t_begin < a.tiles_per_split ? a.tiles : t_begin + a.tiles_per_split;
  for (int64_t t = t_begin; t < t_end; ++t) {
    const int n = static_cast<int>(t / a.m_tiles);
    const int m0 = static_cast<int>(t - int64_t(n) * a.m_tiles) * kBwdPixels;
    const int count = a.pq - m0 < kBwdPixels ? a.pq - m0 : kBwdPixels;
    const int p_lo = m0 / a.q;

    __syncthreads();  // the previous tile's readers are done with the staged data
    stage_input(a.x + int64_t(n) * a.c * a.in_h * a.in_w, a.c, a.in_h, a.in_w, p_lo * a.sh - a.pt,
                -a.pl, a.in, xs);
    // dy[n, k0 + kl, m0 + ml] -> dys[ml][kl]: neighbouring threads read neighbouring pixels.
    const float* dyn = a.dy + int64_t(n) * a.k * a.pq + m0;
    for (int i = tid; i < kBwdPixels * a.tile_k; i += kDirectThreads) {
      const int kl = i / kBwdPixels, ml = i - kl * kBwdPixels;
      const int kk = k0 + kl;
      dys[ml * a.dy_pitch + kl] = ml < count && kk < a.k ? dyn[int64_t(kk) * a.pq + ml] : 0.f;
    }
    for (int ml = tid; ml < count; ml += kDirectThreads) {
      const int mm = m0 + ml, op = mm / a.q, oq = mm - op * a.q;
      pix[ml] = (op - p_lo) * a.sh * a.in.row_pitch + oq * a.sw;
    }
    __syncthreads();

    for (int ml = 0; ml < count; ++ml) {
      const int po = pix[ml];
      const float4 d0 = *reinterpret_cast<const float4*>(dys + ml * a.dy_pitch + kt);
      const float4 d1 = *reinterpret_cast<const float4*>(dys + ml * a.dy_pitch + kt + 4);
      const float dv[kBwdFilters] = {d0.x, d0.y, d0.z, d0.w, d1.x, d1.y, d1.z, d1.w};
#pragma unroll
      for (int i = 0; i < kBwdTaps; ++i) {
        const float xv = xs[po + eoff[i]];
#pragma unroll
        for (int j = 0; j < kBwdFilters; ++j) acc[i][j] = fmaf(xv, dv[j], acc[i][j]);
      }
    }
  }

  // 32 lanes store 32 neighbouring taps of one filter.
  float* dst = a.out + int64_t(z) * a.k * a.crs;
#pragma unroll
  for (int j = 0; j < kBwdFilters; ++j) {
    const int kk = k0 + kt + j;
    if (kk >= a.k) continue;
#pragma unroll
    for (int i = 0; i < kBwdTaps; ++i)
      if (e[i] < a.crs) dst[int64_t(kk) * a.crs + e[i]] = acc[i][j];
  }
}

}  // namespace

cudaError_t direct_forward(const DirectForwardPlan& plan, const Conv2dGeometry& g, const float* x,
                           const float* w, const float* b, ActKind act, float* y,
                           cudaStream_t stream) {
  DirectForwardArgs a{};
  static_cast<ConvShape&>(a) = conv_shape(g);
  a.x = x;
  a.w = w;
  a.b = b;
  a.y = y;
  a.warps_k = plan.warps_k;
  a.tile_m = plan.tile_m;
  a.tile_k = plan.tile_k;
  a.m_tiles = plan.m_tiles;
  a.in = plan.in;
  a.act = act;
  const dim3 grid(static_cast<unsigned>(int64_t(g.n) * plan.m_tiles),
                  static_cast<unsigned>(plan.k_groups));
  detail::launch(direct_forward_kernel, grid, kDirectThreads, plan.smem_bytes, stream, a);
  return cudaGetLastError();
}

cudaError_t direct_filter(const DirectFilterPlan& plan, const Conv2dGeometry& g, const float* x,
                          const float* dy, float* out, cudaStream_t stream) {
  DirectFilterArgs a{};
  static_cast<ConvShape&>(a) = conv_shape(g);
  a.x = x;
  a.dy = dy;
  a.out = out;
  a.warps_e = plan.warps_e;
  a.tile_e = plan.tile_e;
  a.tile_k = plan.tile_k;
  a.dy_pitch = plan.dy_pitch;
  a.m_tiles = plan.m_tiles;
  a.tiles = plan.tiles;
  a.tiles_per_split = plan.tiles_per_split;
  a.in = plan.in;
  const dim3 grid(static_cast<unsigned>(plan.splits), static_cast<unsigned>(plan.k_groups),
                  static_cast<unsigned>(plan.e_groups));
  detail::launch(direct_filter_kernel, grid, kDirectThreads, plan.smem_bytes, stream, a);
  return cudaGetLastError();
}

}  // namespace conv2d_detail
}  // namespace cnnk
