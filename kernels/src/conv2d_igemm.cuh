// Private to the convolution launchers (conv2d.cu; conv2d_direct.cuh shares the geometry
// checks): the implicit-GEMM kernels for convolution and the host-side plans that size
// their launches. Not part of the kernels' interface.
//
// Every pass of a convolution is one GEMM, out[f, s] = sum_k A[k, f] * B[k, s], whose
// operands are gathered from the NCHW / OIHW tensors on the fly (no im2col buffer):
//
//   pass            f ("fast": output-contiguous)  s ("slow")   k (reduction)
//   forward         n,p,q  (N*P*Q)                 k (K)        c,r,s (C*R*S)
//   backward data   n,h,w  (N*H*W)                 c (C)        k,r,s (K*R*S)
//   backward filter c,r,s  (C*R*S)                 k (K)        n,p,q (N*P*Q, split)
//
// "Fast" is the GEMM dimension along which the output is contiguous in memory, so the
// epilogue's stores coalesce. One kernel template runs all three; a Problem struct says
// how to gather each operand and where each result goes.
//
// Block tiles, 256 threads each: Tile64, 64 (fast) x 64 (slow) x 16 (reduction), and
// Tile128, 128 x 128 x 8. The staged tiles are multiplied either with FP32 FMAs (FmaMath:
// a register tile per thread, 4 x 4 in Tile64 and 8 x 8 in Tile128, read from shared
// memory 4 values per load) or on TF32 tensor cores (Tf32Math: wmma m16n16k8, each warp
// a 16 x 32 piece of Tile64 or 32 x 64 of Tile128). All share the loaders and the
// epilogue (the result tile through shared memory, then Problem::store), so they differ
// only in how the product is formed.
//
// Why two FP32 tiles: per reduction index a 4 x 4 register tile issues 16 FMAs against 2
// shared-memory loads (3 wavefronts per warp), an 8 x 8 one 64 against 4 (6 wavefronts),
// so Tile128 leaves the FMA pipes more margin over shared-memory bandwidth on large
// layers, at the price of 4 times fewer blocks (a small layer may not fill the GPU) and
// about twice the registers per thread.
#pragma once

#include <mma.h>

#include <cstdint>
#include <type_traits>

#include "activation_math.cuh"
#include "cnnk/activation.h"
#include "cnnk/geometry.h"
#include "conv2d_shape.cuh"
#include "fast_divide.cuh"
#include "launch_util.cuh"

namespace cnnk {
namespace conv2d_detail {

using detail::FastDivisor;

constexpr int kThreads = 256;
constexpr int kThreadsF = 16;  // threads along fast in the register-tile grid
constexpr int kThreadsS = 16;  // threads along slow; results go out at this column stride
static_assert(kThreadsF * kThreadsS == kThreads, "one register tile per thread");
constexpr int kLoads = 4;  // values of each operand per thread per reduction step

// Loading a reduction step: the fast operand (K x F values) is read by thread t at fast
// row t % F and the 4 consecutive reduction indices 4 * (t / F) + l; the slow operand
// (K x S) at reduction index t % K and slow columns t / K + kSlowStride * l.
template <int F, int S, int K>
struct TileT {
  static constexpr int kTileF = F, kTileS = S, kTileK = K;
  static constexpr int kMicroF = F / kThreadsF, kMicroS = S / kThreadsS;  // register tile
  static constexpr int kSlowStride = kThreads / K;
  static_assert(F % kThreadsF == 0 && S % kThreadsS == 0, "whole register tiles");
  static_assert(kThreads % F == 0 && kThreads / F * kLoads == K, "fast loads cover the step");
  static_assert(kThreads % K == 0 && kSlowStride * kLoads == S, "slow loads cover the step");
};
using Tile64 = TileT<64, 64, 16>;
using Tile128 = TileT<128, 128, 8>;

// Row, column and reduction indices are 32-bit, and so are offsets within one image of a
// tensor and within the filter (an image's place in the batch is 64-bit): each of these
// products must stay below this, with room for a tile of overhang.
constexpr int64_t kMaxIndex = int64_t(1) << 30;

// Why the kernels cannot run `g`, or nullptr when they can.
inline const char* geometry_problem(const Conv2dGeometry& g) {
  if (g.dil_h != 1 || g.dil_w != 1) return "dilation > 1: use cuDNN";
  if (g.n < 0 || g.c < 0 || g.h < 0 || g.w < 0 || g.k < 0 || g.p < 0 || g.q < 0)
    return "negative dimension";
  if (g.r < 1 || g.s < 1 || g.stride_h < 1 || g.stride_w < 1)
    return "filter size and stride must be at least 1";
  const int64_t n = g.n, c = g.c, k = g.k, hw = int64_t(g.h) * g.w, pq = int64_t(g.p) * g.q,
                rs = int64_t(g.r) * g.s;
  // The kernels form p*stride - pad (+ r) in 32 bits, with either sign of padding (a
  // negative one crops): bounded by the magnitudes.
  const int64_t pad_h = g.pad_top < 0 ? -int64_t(g.pad_top) : g.pad_top;
  const int64_t pad_w = g.pad_left < 0 ? -int64_t(g.pad_left) : g.pad_left;
  if (n * pq >= kMaxIndex || n * hw >= kMaxIndex || c * rs >= kMaxIndex || k * rs >= kMaxIndex ||
      c * hw >= kMaxIndex || k * pq >= kMaxIndex || k * c * rs >= kMaxIndex ||
      g.p * int64_t(g.stride_h) + g.r + pad_h >= kMaxIndex ||
      g.q * int64_t(g.stride_w) + g.s + pad_w >= kMaxIndex)
    return "a dimension product reaches 2^30: beyond the 32-bit tile indexing, use cuDNN";
  // grid.y counts the tiles of K (forward, backward filter) or C (backward data), 64 to a
  // tile in Tile64, and may not pass 65535.
  constexpr int64_t kMaxSlow = int64_t(65535) * 64;
  if (k > kMaxSlow || c > kMaxSlow)
    return "more than 4,194,240 filters or input channels: beyond the grid's 65535 tiles, use "
           "cuDNN";
  return nullptr;
}

// A GEMM's reduction of `length` indices cut into `splits` chunks of `chunk` indices (a
// multiple of 16, whole steps of either tile; the last chunk may be shorter, none is
// empty), one per grid.z. With splits > 1 each chunk writes a partial result to the
// workspace and a second kernel sums them in order (deterministic); with one split the
// GEMM writes the result directly. Every split is a pure function of the geometry, so
// the workspace is sized before any launch, and it counts Tile64's tiles whatever the
// variant: one workspace size for all, and the same chunks (so the same bits) on either
// tile.
struct ReductionSplit {
  int splits = 1;
  int chunk = 0;
};
inline ReductionSplit split_into(int64_t length, int64_t splits) {
  ReductionSplit r;
  r.chunk = static_cast<int>(length);
  if (splits <= 1) return r;
  int64_t chunk = (length + splits - 1) / splits;
  chunk = (chunk + Tile64::kTileK - 1) / Tile64::kTileK * Tile64::kTileK;
  r.splits = static_cast<int>((length + chunk - 1) / chunk);  // every chunk non-empty
  r.chunk = static_cast<int>(chunk);
  return r;
}
inline int64_t tile64_count(int64_t fast, int64_t slow) {
  return ((fast + Tile64::kTileF - 1) / Tile64::kTileF) *
         ((slow + Tile64::kTileS - 1) / Tile64::kTileS);
}

// Backward filter splits its reduction over N*P*Q: enough chunks that none is much longer
// than kSplitTarget, and, when the filter has few tiles (a first layer: 64 x 49), enough
// to give the GPU about kFillBlocks blocks, as long as each chunk keeps at least
// kMinChunk indices.
constexpr int64_t kSplitTarget = 4096;
constexpr int64_t kMinChunk = 512;
constexpr int64_t kFillBlocks = 256;  // about two blocks per SM of an H100/H200
constexpr int64_t kMaxSplits = 32;
inline ReductionSplit filter_split(const Conv2dGeometry& g) {
  const int64_t npq = int64_t(g.n) * g.p * g.q;
  const int64_t tiles = tile64_count(int64_t(g.c) * g.r * g.s, g.k);
  if (npq <= kMinChunk || tiles == 0) return split_into(npq, 1);
  const int64_t by_length = (npq + kSplitTarget - 1) / kSplitTarget;
  int64_t by_fill = (kFillBlocks + tiles - 1) / tiles;
  const int64_t most_for_min_chunk = npq / kMinChunk;  // >= 1
  if (by_fill > most_for_min_chunk) by_fill = most_for_min_chunk;
  int64_t splits = by_length > by_fill ? by_length : by_fill;
  if (splits > kMaxSplits) splits = kMaxSplits;
  return split_into(npq, splits);
}

// Forward and backward data split their reduction (C*R*S, K*R*S) only to fill the GPU:
// when the output has fewer than kFillBlocks tiles (small batches: fashion-cnn's 7x7
// layers at batch 32 have 100), into enough chunks of at least kMinFillChunk indices to
// give about kFillBlocks blocks. The partials cost one more write and read of the output
// (a few MB, mostly in L2); a block alone on its SM costs far more. Outputs of 2^30
// elements or more are never split (the sum kernels index in 32 bits, and such outputs
// have tiles enough).
constexpr int64_t kMinFillChunk = 256;
inline ReductionSplit fill_split(int64_t fast, int64_t slow, int64_t length) {
  const int64_t tiles = tile64_count(fast, slow);
  if (tiles == 0 || tiles >= kFillBlocks || fast * slow >= kMaxIndex) return split_into(length, 1);
  int64_t splits = (kFillBlocks + tiles - 1) / tiles;
  if (splits > length / kMinFillChunk) splits = length / kMinFillChunk;
  if (splits > kMaxSplits) splits = kMaxSplits;
  return split_into(length, splits);
}
inline ReductionSplit forward_split(const Conv2dGeometry& g) {
  return fill_split(int64_t(g.n) * g.p * g.q, g.k, int64_t(g.c) * g.r * g.s);
}
inline ReductionSplit data_split(const Conv2dGeometry& g) {
  return fill_split(int64_t(g.n) * g.h * g.w, g.c, int64_t(g.k) * g.r * g.s);
}

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// ---------------------------------------------------------------------------------------
// The three problems. Each provides fast_dim(), slow_dim(), reduction_range(z, begin,
// end), a Fast and a Slow gatherer (constructed once per thread for its fixed row or
// columns, then load() per reduction step), and store() for the epilogue.

__device__ __forceinline__ bool in_range(int i, int n) {
  return static_cast<unsigned>(i) < static_cast<unsigned>(n);
}

// Where a gatherer's row or column past the GEMM's edge puts its window: so far above the
// image that no tap reaches it (every tap offset and output position is below kMaxIndex).
// The bounds checks that every load makes anyway then skip its loads, with no check of
// the row per load. (Its results are never stored, so the loads would do no harm from
// image 0; they would only cost bandwidth.)
constexpr int kNowhere = -static_cast<int>(kMaxIndex);

// y[n,k,p,q] = act(b[k] + sum_{c,r,s} x[n, c, p*sh - pt + r, q*sw - pl + s] * w[k,c,r,s])
struct ForwardProblem : ConvShape {
  const float* x;
  const float* w;
  const float* b;  // may be null
  float* y;
  ActKind act;     // applied in the epilogue (unsplit) or by the partials' sum
  int m;           // N*P*Q
  int chunk;       // of the reduction, per grid.z (forward_split)
  float* partial;  // null: the GEMM writes y; else [splits][N][K][P*Q], raw sums
  FastDivisor by_rs, by_s, by_pq;

  __device__ int fast_dim() const { return m; }
  __device__ int slow_dim() const { return k; }
  __device__ void reduction_range(int z, int& begin, int& end) const {
    begin = z * chunk;
    end = crs - begin < chunk ? crs : begin + chunk;
  }

  // The implicit im2col: row m (one output pixel), reduction index (c, r, s).
  struct Fast {
    const float* xn;  // image n of x
    int ih0, iw0;     // top-left input position of the window (kNowhere past the last row)
    __device__ Fast(const ForwardProblem& pb, int row) : xn(pb.x), ih0(kNowhere), iw0(kNowhere) {
      if (row >= pb.m) return;
      const int n = row / pb.pq, pix = row - n * pb.pq;
      const int op = pix / pb.q, oq = pix - op * pb.q;
      xn = pb.x + int64_t(n) * pb.c * pb.hw;
      ih0 = op * pb.sh - pb.pt;
      iw0 = oq * pb.sw - pb.pl;
    }
    // Reduction indices first .. first + 3.
    __device__ void load(const ForwardProblem& pb, int first, int end, float (&v)[kLoads]) const {
      int ci, t, ri, si;
      pb.by_rs.divmod(first, ci, t);
      pb.by_s.divmod(t, ri, si);
      const int left = end - first;
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        float val = 0.f;
        const int ih = ih0 + ri, iw = iw0 + si;
        if (l < left && in_range(ih, pb.in_h) && in_range(iw, pb.in_w))
          val = xn[ci * pb.hw + ih * pb.in_w + iw];
        v[l] = val;
        if (++si == pb.s) {
          si = 0;
          if (++ri == pb.r) {
            ri = 0;
            ++ci;
          }
        }
      }
    }
  };

  // w viewed as [K, C*R*S]: columns col, col + 16, col + 32, col + 48.
  struct Slow {
    int col, stride;
    __device__ Slow(const ForwardProblem&, int first_col, int col_stride)
        : col(first_col), stride(col_stride) {}
    __device__ void load(const ForwardProblem& pb, int red, int end, float (&v)[kLoads]) const {
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        const int kk = col + l * stride;
        v[l] = (kk < pb.k && red < end) ? pb.w[kk * pb.crs + red] : 0.f;
      }
    }
  };

  template <int N>
  __device__ void store(int row, int first_col, const float (&v)[N], int z) const {
    int n, pix;
    by_pq.divmod(row, n, pix);
    const int64_t at = int64_t(n) * k * pq + pix;
    if (partial) {
      float* out = partial + int64_t(z) * m * k + at;
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const int kk = first_col + j * kThreadsS;
        if (kk < k) out[kk * pq] = v[j];
      }
      return;
    }
    float* out = y + at;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int kk = first_col + j * kThreadsS;
      if (kk < k) out[kk * pq] = act_detail::activate(act, b ? v[j] + b[kk] : v[j]);
    }
  }
};

// dx[n,c,h,w] = sum_{k,r,s} dy[n,k,p,q] * w[k,c,r,s] over the (r, s) for which
// h + pt - r = p*sh and w + pl - s = q*sw with p in [0,P), q in [0,Q).
//
// kUnitStride: both strides are 1 (every convolution of the seed models), and the output
// pixel of a tap is (h + pt - r, w + pl - s) itself, with no division. Otherwise each
// gathered value costs two divisions by the strides and the checks that they are exact;
// in the same loop behind a run-time branch, they would double the loop's code.
template <bool kUnitStride>
struct BackwardDataProblemT : ConvShape {
  const float* dy;
  const float* w;
  float* out;  // dx, or when the reduction is split the workspace [splits][N][C][H*W]
  int krs, m;  // k*r*s, N*H*W
  int chunk;   // of the reduction, per grid.z (data_split)
  FastDivisor by_rs, by_s, by_sh, by_sw, by_hw;

  __device__ int fast_dim() const { return m; }
  __device__ int slow_dim() const { return c; }
  __device__ void reduction_range(int z, int& begin, int& end) const {
    begin = z * chunk;
    end = krs - begin < chunk ? krs : begin + chunk;
  }

  // Row m (one input pixel), reduction index (k, r, s): the output pixel that read this
  // input through tap (r, s), if there is one.
  struct Fast {
    const float* dyn;  // image n of dy
    int th, tw;        // h + pt, w + pl (kNowhere past the last row)
    __device__ Fast(const BackwardDataProblemT& pb, int row)
        : dyn(pb.dy), th(kNowhere), tw(kNowhere) {
      if (row >= pb.m) return;
      const int n = row / pb.hw, pix = row - n * pb.hw;
      const int ih = pix / pb.in_w, iw = pix - ih * pb.in_w;
      dyn = pb.dy + int64_t(n) * pb.k * pb.pq;
      th = ih + pb.pt;
      tw = iw + pb.pl;
    }
    __device__ void load(const BackwardDataProblemT& pb, int first, int end,
                         float (&v)[kLoads]) const {
      int ki, t, ri, si;
      pb.by_rs.divmod(first, ki, t);
      pb.by_s.divmod(t, ri, si);
      const int left = end - first;
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        float val = 0.f;
        const int ph = th - ri, pw = tw - si;
        if (kUnitStride) {
          if (l < left && in_range(ph, pb.p) && in_range(pw, pb.q))
            val = dyn[ki * pb.pq + ph * pb.q + pw];
        } else if (l < left && ph >= 0 && pw >= 0) {
          const int op = pb.by_sh.div(ph), oq = pb.by_sw.div(pw);
          if (op * pb.sh == ph && oq * pb.sw == pw && op < pb.p && oq < pb.q)
            val = dyn[ki * pb.pq + op * pb.q + oq];
        }
        v[l] = val;
        if (++si == pb.s) {
          si = 0;
          if (++ri == pb.r) {
            ri = 0;
            ++ki;
          }
        }
      }
    }
  };

  // w[k, c, r, s] for reduction index (k, r, s) and channels col + 16 l.
  struct Slow {
    int col, stride;
    __device__ Slow(const BackwardDataProblemT&, int first_col, int col_stride)
        : col(first_col), stride(col_stride) {}
    __device__ void load(const BackwardDataProblemT& pb, int red, int end,
                         float (&v)[kLoads]) const {
      int ki, t;
      pb.by_rs.divmod(red, ki, t);
      // Past the reduction's end ki may pass k, and ki * crs the int range: not computed.
      const int wk = red < end ? ki * pb.crs + t : 0;
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        const int ci = col + l * stride;
        v[l] = (ci < pb.c && red < end) ? pb.w[wk + ci * pb.rs] : 0.f;
      }
    }
  };

  template <int N>
  __device__ void store(int row, int first_col, const float (&v)[N], int z) const {
    int n, pix;
    by_hw.divmod(row, n, pix);
    float* dst = out + int64_t(z) * m * c + int64_t(n) * c * hw + pix;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int ci = first_col + j * kThreadsS;
      if (ci < c) dst[ci * hw] = v[j];
    }
  }
};

// dw[k, (c,r,s)] = sum_{n,p,q} dy[n,k,p,q] * x[n, c, p*sh - pt + r, q*sw - pl + s], the
// reduction split into chunks along grid.z.
struct BackwardFilterProblem : ConvShape {
  const float* x;
  const float* dy;
  float* out;  // dw when splits == 1, else the workspace [splits][K][C*R*S]
  int npq;
  int chunk;
  FastDivisor by_pq, by_q;

  __device__ int fast_dim() const { return crs; }
  __device__ int slow_dim() const { return k; }
  __device__ void reduction_range(int z, int& begin, int& end) const {
    begin = z * chunk;
    end = npq - begin < chunk ? npq : begin + chunk;
  }

  // Column (c, r, s) of dw, reduction index (n, p, q).
  struct Fast {
    const float* xc;  // channel c of image 0 of x
    int64_t chw;      // floats per image of x
    int roff, soff;   // r - pt, s - pl (kNowhere past the last column)
    __device__ Fast(const BackwardFilterProblem& pb, int col)
        : xc(pb.x), chw(int64_t(pb.c) * pb.hw), roff(kNowhere), soff(kNowhere) {
      if (col >= pb.crs) return;
      const int ci = col / pb.rs, t = col - ci * pb.rs;
      const int ri = t / pb.s, si = t - ri * pb.s;
      xc = pb.x + int64_t(ci) * pb.hw;
      roff = ri - pb.pt;
      soff = si - pb.pl;
    }
    __device__ void load(const BackwardFilterProblem& pb, int first, int end,
                         float (&v)[kLoads]) const {
      int n, t, op, oq;
      pb.by_pq.divmod(first, n, t);
      pb.by_q.divmod(t, op, oq);
      const float* xn = xc + n * chw;
      const int left = end - first;
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        float val = 0.f;
        const int ih = op * pb.sh + roff, iw = oq * pb.sw + soff;
        if (l < left && in_range(ih, pb.in_h) && in_range(iw, pb.in_w)) val = xn[ih * pb.in_w + iw];
        v[l] = val;
        if (++oq == pb.q) {
          oq = 0;
          if (++op == pb.p) {
            op = 0;
            xn += chw;
          }
        }
      }
    }
  };

  // dy[n, k, p, q] for reduction index (n, p, q) and filters col + 16 l.
  struct Slow {
    int col, stride;
    __device__ Slow(const BackwardFilterProblem&, int first_col, int col_stride)
        : col(first_col), stride(col_stride) {}
    __device__ void load(const BackwardFilterProblem& pb, int red, int end,
                         float (&v)[kLoads]) const {
      int n, t;
      pb.by_pq.divmod(red, n, t);
      const float* dyn = pb.dy + int64_t(n) * pb.k * pb.pq + t;
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        const int kk = col + l * stride;
        v[l] = (kk < pb.k && red < end) ? dyn[kk * pb.pq] : 0.f;
      }
    }
  };

  template <int N>
  __device__ void store(int col, int first_row, const float (&v)[N], int z) const {
    float* dst = out + int64_t(z) * k * crs + col;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int kk = first_row + j * kThreadsS;
      if (kk < k) dst[kk * crs] = v[j];
    }
  }
};

// ---------------------------------------------------------------------------------------
// How a block multiplies its staged tiles. Each Math names its Tile and provides the slow
// tile's row pitch, clear(), step() (one reduction step of Tile::kTileK over the staged
// tiles) and stage() (writes the accumulators of one part of the block tile to the
// result tile, for staged_epilogue below).

// The result tile leaves through shared memory: each Math writes its accumulators there
// in its own layout, column-major (out[s][f], pitch F + 16), then every thread reads the
// results of fast rows tf + 16 i and slow columns ts + 16 j and hands them to
// Problem::store. So 16 neighbouring threads store 16 neighbouring outputs (coalesced),
// whatever the layout of the accumulators. The pitch is 16 (mod 32) words: a warp's two
// slow columns (ts, ts + 1) fall 16 banks apart, and its 16 fast rows fill the rest, no
// conflicts. A whole Tile128 result tile (128 x 144 floats) would overflow static shared
// memory (48 KB), so it goes in two parts of 64 slow columns, one after the other.
template <class Tile>
struct OutTile {
  static constexpr int kPitch = Tile::kTileF + 16;
  static constexpr int kParts = Tile::kTileS * kPitch * 4 > 32 * 1024 ? 2 : 1;
  static constexpr int kPartS = Tile::kTileS / kParts;
  static_assert(kPartS % kThreadsS == 0 && Tile::kTileF % kThreadsF == 0, "whole read rounds");
};

template <class Math, class Problem>
__device__ __forceinline__ void staged_epilogue(const Math& math, const Problem& pb, int f0, int s0,
                                                int z, int tid) {
  using Out = OutTile<typename Math::Tile>;
  constexpr int kRowsF = Math::Tile::kTileF / kThreadsF, kColsS = Out::kPartS / kThreadsS;
  __shared__ __align__(32) float out_tile[Out::kPartS][Out::kPitch];
  const int tf = tid % kThreadsF, ts = tid / kThreadsF;
  const int fast_dim = pb.fast_dim();
#pragma unroll
  for (int part = 0; part < Out::kParts; ++part) {
    math.stage(out_tile, part, tid);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRowsF; ++i) {
      const int f = f0 + tf + i * kThreadsF;
      float v[kColsS];
#pragma unroll
      for (int j = 0; j < kColsS; ++j) v[j] = out_tile[ts + j * kThreadsS][tf + i * kThreadsF];
      if (f < fast_dim) pb.store(f, s0 + part * Out::kPartS + ts, v, z);
    }
    if (part + 1 < Out::kParts) __syncthreads();  // the next part overwrites the tile
  }
}

// dst[at .. at + 3] = p[0 .. 3], as one 16-byte shared-memory load (p 16-byte aligned).
template <int N>
__device__ __forceinline__ void load4(float (&dst)[N], int at, const float* p) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  dst[at] = q.x;
  dst[at + 1] = q.y;
  dst[at + 2] = q.z;
  dst[at + 3] = q.w;
}

// FP32 FMAs, a kMicroF x kMicroS register tile per thread (4 x 4 in Tile64, 8 x 8 in
// Tile128). Thread t owns, in groups of 4, the fast rows 64 g + 4 (t % 16) + 0..3 and the
// slow columns 64 g + 4 (t / 16) + 0..3, so that each group is one 16-byte shared-memory
// load per reduction index. Why: shared memory serves 128 bytes per clock per SM, and
// the SM issues 4 warp FMAs per clock. With one 4-byte load per value, a 4 x 4 tile
// needs 8 load wavefronts per warp against 16 FMAs (loads bound the kernel at half the
// FMA rate); with 16-byte loads it needs 3 (16 distinct float4 of the fast row, 2
// wavefronts; the warp's 2 slow float4, broadcast, 1), and 8 x 8 needs 6 against 64.
// The slow tile's pitch is a multiple of 4 floats (16-byte aligned rows) and 4 (mod 32)
// words for Tile128, whose slow stores then take 32 different banks; Tile64's (68) costs
// those stores a 2-way conflict, 4 stores a step against 32 loads.
template <class TileType, int kPitch>
struct FmaMathT {
  using Tile = TileType;
  static constexpr int kSlowPitch = kPitch;
  static constexpr int kMF = Tile::kMicroF, kMS = Tile::kMicroS;
  static constexpr int kGroupSpan = 4 * kThreadsF;  // rows (columns) between a thread's groups
  static_assert(kMF % 4 == 0 && kMS % 4 == 0 && kPitch % 4 == 0, "16-byte groups");
  static_assert(kThreadsF == kThreadsS, "one group span for rows and columns");
  static_assert(OutTile<Tile>::kPartS % kGroupSpan == 0, "each column group lies in one part");
  // Blocks per SM that the registers must allow: at most 64 registers a thread for
  // Tile64, 128 for Tile128.
  static constexpr int kMinBlocks = Tile::kTileF == 128 ? 2 : 4;
  float acc[kMF][kMS];

  // A staged operand as the products take it: as loaded.
  __device__ static float operand(float v) { return v; }

  __device__ void clear() {
#pragma unroll
    for (int i = 0; i < kMF; ++i)
#pragma unroll
      for (int j = 0; j < kMS; ++j) acc[i][j] = 0.f;
  }
  __device__ void step(const float (*fast_tile)[Tile::kTileF], const float (*slow_tile)[kSlowPitch],
                       int tid) {
    const int f4 = 4 * (tid % kThreadsF), s4 = 4 * (tid / kThreadsF);
#pragma unroll
    for (int kk = 0; kk < Tile::kTileK; ++kk) {
      float a[kMF], bv[kMS];
#pragma unroll
      for (int g = 0; g < kMF / 4; ++g) load4(a, 4 * g, &fast_tile[kk][g * kGroupSpan + f4]);
#pragma unroll
      for (int g = 0; g < kMS / 4; ++g) load4(bv, 4 * g, &slow_tile[kk][g * kGroupSpan + s4]);
#pragma unroll
      for (int i = 0; i < kMF; ++i)
#pragma unroll
        for (int j = 0; j < kMS; ++j) acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
    }
  }
  // Column j of the register tile is slow column 64 (j / 4) + s4 + j % 4, in part
  // 64 (j / 4) / kPartS; its fast rows go out 4 at a time, one 16-byte store each (8
  // threads of a quarter warp store 128 neighbouring bytes: no conflicts).
  __device__ void stage(float (*out)[OutTile<Tile>::kPitch], int part, int tid) const {
    constexpr int kPartS = OutTile<Tile>::kPartS;
    const int f4 = 4 * (tid % kThreadsF), s4 = 4 * (tid / kThreadsF);
#pragma unroll
    for (int j = 0; j < kMS; ++j) {
      const int group_col = (j / 4) * kGroupSpan;
      if (group_col / kPartS != part) continue;
      float* col = out[group_col - part * kPartS + s4 + j % 4];
#pragma unroll
      for (int g = 0; g < kMF / 4; ++g)
        *reinterpret_cast<float4*>(col + g * kGroupSpan + f4) =
            make_float4(acc[4 * g][j], acc[4 * g + 1][j], acc[4 * g + 2][j], acc[4 * g + 3][j]);
    }
  }
};
using FmaMath = FmaMathT<Tile64, Tile64::kTileS + 4>;
using FmaMath128 = FmaMathT<Tile128, Tile128::kTileS + 4>;

// TF32 tensor cores through wmma (m16n16k8, compute capability 8.0+). The staged tiles
// are the GEMM's operands as they lie: fast_tile[k][f] is A (f x k) in column-major order
// with ldm F, slow_tile[k][s] is B (k x s) in row-major order with ldm S + 4. Warp w owns
// fast rows F/4 * (w % 4) .. +F/4 and slow columns S/2 * (w / 4) .. +S/2, as F/64 x S/32
// accumulators of 16 x 16: on Tile64 (igemm-tf32) a 16 x 32 piece, 2 mma per 8-deep
// sub-step against 3 fragment loads; on Tile128 (igemm-tf32-128) 32 x 64, 8 mma against
// 6. Operands are rounded to TF32 (cvt.rna: to nearest, ties away) as they are staged
// into the tiles; products and sums are FP32. Each output takes its mma in the same order
// on both tiles.
//
// wmma wants ldm a multiple of 4 floats and every fragment pointer 32-byte aligned: the
// tiles are 32-byte aligned, and every fragment starts at a multiple of 8 rows (8 * F and
// 8 * (S + 4) floats are multiples of 8) and of 16 columns. The accumulators go to the
// result tile with wmma's store (column-major, ldm F + 16), by the warps whose
// columns lie in the part being staged.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// The fragment loads, from shared memory. wmma::load_matrix_sync takes a generic pointer,
// and nvcc emits the generic wmma.load for it: on sm_90 each element a generic LD.E with
// 64-bit address arithmetic (scripts/kernel_resources.py's census of the main loop: 24
// LD.E and 34 IMAD.WIDE beside 16 HMMA on Tile64). The tiles are in shared memory, so the
// .shared form, with a 32-bit shared-window address and the stride as an immediate, loads
// the same registers with LDS. The kernel simulator has no PTX: it runs wmma's own load.
enum class Operand { A, B };  // A: the fast tile, column-major; B: the slow tile, row-major
template <Operand kWhich, unsigned kLdm, class Frag>
__device__ __forceinline__ void load_tf32(Frag& f, const float* p) {
#if defined(CNNK_SIM)
  nvcuda::wmma::load_matrix_sync(f, p, kLdm);
#else
  // The PTX below names the layouts: A column-major, B row-major, as step() declares them.
  using namespace nvcuda::wmma;
  static_assert(
      std::is_same_v<
          Frag, std::conditional_t<kWhich == Operand::A,
                                   fragment<matrix_a, 16, 16, 8, precision::tf32, col_major>,
                                   fragment<matrix_b, 16, 16, 8, precision::tf32, row_major> > >,
      "load_tf32 loads A column-major and B row-major m16n16k8 tf32 fragments only");
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
  // The registers in the order wmma.load writes them: the order of the fragment's x[],
  // which load_matrix_sync fills from the same instruction. "memory": the asm reads shared
  // memory the compiler cannot see, written before a barrier and overwritten after the
  // next; volatile alone already keeps it in place (the SASS is the same either way).
  unsigned r[4];
  if constexpr (kWhich == Operand::A) {
    asm volatile("wmma.load.a.sync.aligned.col.m16n16k8.shared.tf32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr), "n"(kLdm)
                 : "memory");
  } else {
    asm volatile("wmma.load.b.sync.aligned.row.m16n16k8.shared.tf32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr), "n"(kLdm)
                 : "memory");
  }
#pragma unroll
  for (int e = 0; e < 4; ++e) f.x[e] = __uint_as_float(r[e]);
#endif
}

// The accumulators to the result tile (shared memory, column-major), by the .shared form
// of wmma.store for the same reason: store_matrix_sync's generic form is an ST.E per
// element with 64-bit addresses.
template <unsigned kLdm, class Frag>
__device__ __forceinline__ void store_f32_col(float* p, const Frag& f) {
#if defined(CNNK_SIM)
  nvcuda::wmma::store_matrix_sync(p, f, kLdm, nvcuda::wmma::mem_col_major);
#else
  static_assert(
      std::is_same_v<Frag, nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float> >,
      "store_f32_col stores m16n16k8 f32 accumulators only");
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
  // x[] in order, as store_matrix_sync passes it; "memory": it writes shared memory that
  // other threads read after the next barrier.
  asm volatile(
      "wmma.store.d.sync.aligned.col.m16n16k8.shared.f32 [%0], {%1, %2, %3, %4, %5, %6, %7, %8}, "
      "%9;"
      :
      : "r"(addr), "f"(f.x[0]), "f"(f.x[1]), "f"(f.x[2]), "f"(f.x[3]), "f"(f.x[4]), "f"(f.x[5]),
        "f"(f.x[6]), "f"(f.x[7]), "n"(kLdm)
      : "memory");
#endif
}

template <class TileType>
struct Tf32MathT {
  using Tile = TileType;
  static constexpr int kSlowPitch = Tile::kTileS + 4;
  static constexpr int kWarpF = Tile::kTileF / 4, kWarpS = Tile::kTileS / 2;  // 8 warps
  static constexpr int kFragF = kWarpF / 16, kFragS = kWarpS / 16;
  static_assert(Tile::kTileK % 8 == 0, "whole wmma steps per stage");
  static_assert(OutTile<Tile>::kPartS % kWarpS == 0, "each warp's columns lie in one part");
  // Blocks per SM the registers must allow. Tile64 asks 3, not FmaMath's 4: rounding the
  // operands where they are staged (operand()) costs it a few registers, and under the
  // 64 that 4 blocks leave ptxas spilled 8 to 28 bytes. 3 blocks leave 80 registers, and
  // that change took the forward main loop from 297 instructions to 212 (16 HMMA either way).
  static constexpr int kMinBlocks = Tile::kTileF == 128 ? 2 : 3;
  nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float> acc[kFragF][kFragS];

  // A staged operand as the products take it: rounded to TF32 once, as it is stored to
  // the tile, rather than after every fragment load (each value is loaded by 2 or 4
  // warps): the same bits, a third of the conversions.
  __device__ static float operand(float v) { return nvcuda::wmma::__float_to_tf32(v); }

  __device__ void clear() {
#pragma unroll
    for (int i = 0; i < kFragF; ++i)
#pragma unroll
      for (int j = 0; j < kFragS; ++j) nvcuda::wmma::fill_fragment(acc[i][j], 0.f);
  }
  __device__ void step(const float (*fast_tile)[Tile::kTileF], const float (*slow_tile)[kSlowPitch],
                       int tid) {
    using namespace nvcuda;
    const int warp = tid / 32;
    const int f_off = kWarpF * (warp % 4), s_off = kWarpS * (warp / 4);
#pragma unroll
    for (int kk = 0; kk < Tile::kTileK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> a[kFragF];
#pragma unroll
      for (int i = 0; i < kFragF; ++i)
        load_tf32<Operand::A, Tile::kTileF>(a[i], &fast_tile[kk][f_off + 16 * i]);
#pragma unroll
      for (int j = 0; j < kFragS; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
        load_tf32<Operand::B, kSlowPitch>(b, &slow_tile[kk][s_off + 16 * j]);
#pragma unroll
        for (int i = 0; i < kFragF; ++i) wmma::mma_sync(acc[i][j], a[i], b, acc[i][j]);
      }
    }
  }
  __device__ void stage(float (*out)[OutTile<Tile>::kPitch], int part, int tid) const {
    constexpr int kPartS = OutTile<Tile>::kPartS;
    const int warp = tid / 32;
    const int f_off = kWarpF * (warp % 4), s_off = kWarpS * (warp / 4);
    if (s_off / kPartS != part) return;
#pragma unroll
    for (int i = 0; i < kFragF; ++i)
#pragma unroll
      for (int j = 0; j < kFragS; ++j)
        store_f32_col<OutTile<Tile>::kPitch>(&out[s_off - part * kPartS + 16 * j][f_off + 16 * i],
                                             acc[i][j]);
  }
};
#else
// No TF32 tensor cores below compute capability 8.0 (the launchers refuse TF32 on such
// devices); should this code still run there (PTX built for an older target), it
// computes in FP32 rather than not at all.
template <class TileType>
struct Tf32MathT : FmaMathT<TileType, TileType::kTileS + 4> {};
#endif
using Tf32Math = Tf32MathT<Tile64>;
using Tf32Math128 = Tf32MathT<Tile128>;

// ---------------------------------------------------------------------------------------
// The GEMM. grid = (ceil(fast / F), ceil(slow / S), reduction chunks), block = 256.
// Shared memory: fast tile K x F floats + slow tile K x Math::kSlowPitch floats + the
// result tile (OutTile): 4096 + 4352 + 20480 B for Tile64, 4096 + 4224 + 36864 B (half
// the result tile) for Tile128, FP32 or TF32.
template <class Problem, class Math>
__global__ void __launch_bounds__(kThreads, Math::kMinBlocks)
    implicit_gemm_kernel(const Problem pb) {
  using Tile = typename Math::Tile;
  constexpr int kF = Tile::kTileF, kS = Tile::kTileS, kK = Tile::kTileK;
  __shared__ __align__(32) float fast_tile[kK][kF];
  __shared__ __align__(32) float slow_tile[kK][Math::kSlowPitch];

  const int tid = static_cast<int>(threadIdx.x);
  const int f0 = static_cast<int>(blockIdx.x) * kF;
  const int s0 = static_cast<int>(blockIdx.y) * kS;
  const int z = static_cast<int>(blockIdx.z);
  int begin = 0, end = 0;
  pb.reduction_range(z, begin, end);

  // Loading roles (see TileT).
  const int load_f = tid % kF, load_fk = (tid / kF) * kLoads;
  const int load_sk = tid % kK, load_s = tid / kK;
  const typename Problem::Fast fast(pb, f0 + load_f);
  const typename Problem::Slow slow(pb, s0 + load_s, Tile::kSlowStride);

  Math math;
  math.clear();

  // Registers hold the next step's operands while the current one is multiplied.
  float fr[kLoads] = {0.f, 0.f, 0.f, 0.f}, sr[kLoads] = {0.f, 0.f, 0.f, 0.f};
  if (begin < end) {
    fast.load(pb, begin + load_fk, end, fr);
    slow.load(pb, begin + load_sk, end, sr);
  }
  for (int k0 = begin; k0 < end; k0 += kK) {
#pragma unroll
    for (int l = 0; l < kLoads; ++l) fast_tile[load_fk + l][load_f] = Math::operand(fr[l]);
#pragma unroll
    for (int l = 0; l < kLoads; ++l)
      slow_tile[load_sk][load_s + l * Tile::kSlowStride] = Math::operand(sr[l]);
    __syncthreads();
    if (k0 + kK < end) {
      fast.load(pb, k0 + kK + load_fk, end, fr);
      slow.load(pb, k0 + kK + load_sk, end, sr);
    }
    math.step(fast_tile, slow_tile, tid);
    __syncthreads();  // the tiles are overwritten next step
  }
  staged_epilogue(math, pb, f0, s0, z, tid);
}

}  // namespace conv2d_detail
}  // namespace cnnk
