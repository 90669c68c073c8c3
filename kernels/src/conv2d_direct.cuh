// Private to the convolution launchers: the direct kernels for small reductions (first
// layers: 1 channel 7x7, 3 channels 3x3) and the host-side plans that decide whether they
// run a geometry and size their launches. Not part of the kernels' interface.
//
// A first layer's reduction C*R*S (49 for 1x7x7) fills the implicit GEMM's 16-deep steps
// badly (64 slots for 49) and spends most of its time on im2col index arithmetic. The
// direct kernels instead stage one image's input tile, with its halo and zero padding, in
// shared memory once per block, and index it with precomputed offsets:
//
//   forward          block = one image, `tile_m` consecutive output pixels (p*Q + q
//                    order) x `tile_k` filters; the block's filters are staged as
//                    [c*r*s][tile_k]. Thread = 4 pixels (32 apart: neighbouring lanes
//                    read neighbouring words) x 8 filters (two broadcast float4 reads).
//   backward filter  block = `tile_e` filter taps (c, r, s) x `tile_k` filters, summed
//                    over one split of the N*P*Q pixels, 64 pixels staged at a time
//                    (input tile, dy tile [pixel][filter], per-pixel offsets). Thread =
//                    2 taps (lane and lane + 32) x 8 filters. Each split writes a partial
//                    dw to the workspace, summed in a fixed order afterwards: the result
//                    is deterministic.
//
// Staged input: rows [p_lo * sh - pt, ...) for the output rows p_lo .. that the tile
// touches, columns [-pl, (Q - 1) * sw - pl + S): exactly the columns any output reads, so
// padding needs no test in the inner loop (out-of-image positions are staged as zeros).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cnnk/activation.h"
#include "cnnk/geometry.h"
#include "conv2d_igemm.cuh"

namespace cnnk {
namespace conv2d_detail {

constexpr int kDirectThreads = 256;
constexpr int kDirectWarps = kDirectThreads / 32;
constexpr int kDirectMaxWindow = 9;      // r and s
constexpr int kDirectMaxReduction = 64;  // C*R*S, unless C is at most kDirectFewChannels
constexpr int kDirectFewChannels = 4;
// Dynamic shared memory without an opt-in: 48 KiB.
constexpr int64_t kDirectSmemFloats = 48 * 1024 / 4;

constexpr int kFwdPixels = 4;   // output pixels per thread, 32 apart
constexpr int kFwdFilters = 8;  // filters per thread

constexpr int kBwdPixels = 64;  // pixels staged per step of backward filter
constexpr int kBwdTaps = 2;     // filter taps per thread: lane, lane + 32
constexpr int kBwdFilters = 8;  // filters per thread
constexpr int kBwdTapsPerWarp = 32 * kBwdTaps;
// Splits of the pixel reduction: about kFillBlocks blocks in all, at most this many.
constexpr int64_t kMaxDirectSplits = 256;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Why the direct kernels cannot take `g`, whatever the pass, or nullptr.
inline const char* direct_problem(const Conv2dGeometry& g) {
  if (const char* why = geometry_problem(g)) return why;
  if (g.r > kDirectMaxWindow || g.s > kDirectMaxWindow) return "direct: window over 9x9";
  if (int64_t(g.c) * g.r * g.s > kDirectMaxReduction && g.c > kDirectFewChannels)
    return "direct: C*R*S over 64 with more than 4 channels";
  return nullptr;
}

// The output rows that `tile` consecutive pixels can touch when the first is any pixel:
// with m0 = a*Q + b (b < Q), the last is m0 + tile - 1, in row a + (b + tile - 1) / Q,
// so at most (Q - 1 + tile - 1) / Q + 1 rows, and never more than P.
inline int64_t rows_spanned(int64_t tile, int p, int q) {
  if (p <= 0 || q <= 0) return 0;
  const int64_t rows = (tile + q - 2) / q + 1;
  return rows < p ? rows : p;
}

// The staged input window of a tile of `tile` pixels.
struct StagedInput {
  int rows = 0, cols = 0;  // logical extent
  int row_pitch = 0;       // floats between staged rows
  int plane = 0;           // floats between staged channels
  int64_t floats = 0;      // c * plane, rounded up to 4 (what follows is float4-aligned)
};
inline StagedInput staged_input(const Conv2dGeometry& g, int64_t tile, bool tap_aligned) {
  StagedInput in;
  const int64_t span = rows_spanned(tile, g.p, g.q);
  if (span == 0) return in;
  const int64_t rows = (span - 1) * g.stride_h + g.r;
  const int64_t cols = int64_t(g.q - 1) * g.stride_w + g.s;
  int64_t row_pitch = cols, plane = rows * cols;
  if (tap_aligned) {
    // Backward filter: lanes read taps (c, r, s) at c*plane + r*row_pitch + s plus a
    // common pixel offset. With row_pitch = S and plane = R*S (mod 32) that is the tap
    // index itself mod 32: 32 consecutive taps fall into 32 different banks.
    row_pitch = cols + ((g.s - cols) % 32 + 32) % 32;
    plane = rows * row_pitch;
    const int64_t rs = int64_t(g.r) * g.s;
    plane += ((rs - plane) % 32 + 32) % 32;
  }
  // Beyond the shared memory the plan refuses it; the int fields stay 0 then. (Tested
  // before multiplying by C, which could overflow for absurd sizes.)
  in.floats = plane;
  if (plane > kDirectSmemFloats) return in;
  in.floats = round_up(int64_t(g.c) * plane, 4);
  if (in.floats > kDirectSmemFloats) return in;
  in.rows = static_cast<int>(rows);
  in.cols = static_cast<int>(cols);
  in.row_pitch = static_cast<int>(row_pitch);
  in.plane = static_cast<int>(plane);
  return in;
}

// ---------------------------------------------------------------------------------------
// Forward.

struct DirectForwardPlan {
  const char* why = nullptr;  // nullptr: the direct kernel runs this geometry
  int warps_k = 1;            // warps along filters (1, 2, 4, 8); the rest along pixels
  int tile_m = 0, tile_k = 0;
  StagedInput in;
  int m_tiles = 0, k_groups = 0;
  size_t smem_bytes = 0;
};

inline DirectForwardPlan direct_forward_plan(const Conv2dGeometry& g) {
  DirectForwardPlan pl;
  if ((pl.why = direct_problem(g))) return pl;
  // As many filter warps as the filters need, so few filters leave no warp idle.
  while (pl.warps_k < kDirectWarps && pl.warps_k * kFwdFilters < g.k) pl.warps_k *= 2;
  pl.tile_k = pl.warps_k * kFwdFilters;
  pl.tile_m = 32 * kFwdPixels * (kDirectWarps / pl.warps_k);
  pl.in = staged_input(g, pl.tile_m, false);
  const int64_t crs = int64_t(g.c) * g.r * g.s;
  const int64_t floats = pl.in.floats + crs * pl.tile_k;
  if (floats > kDirectSmemFloats) {
    pl.why = "direct: the input tile and the filters exceed 48 KiB of shared memory";
    return pl;
  }
  const int64_t pq = int64_t(g.p) * g.q;
  const int64_t m_tiles = (pq + pl.tile_m - 1) / pl.tile_m;
  const int64_t k_groups = (int64_t(g.k) + pl.tile_k - 1) / pl.tile_k;
  if (k_groups > 65535 || int64_t(g.n) * m_tiles > 0x7fffffff) {
    pl.why = "direct: too many blocks";
    return pl;
  }
  pl.m_tiles = static_cast<int>(m_tiles);
  pl.k_groups = static_cast<int>(k_groups);
  pl.smem_bytes = static_cast<size_t>(floats) * sizeof(float);
  return pl;
}

// y = act(conv(x, w) + b); g.output_size() > 0 and plan.why == nullptr.
cudaError_t direct_forward(const DirectForwardPlan& plan, const Conv2dGeometry& g, const float* x,
                           const float* w, const float* b, ActKind act, float* y,
                           cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// Backward filter.

struct DirectFilterPlan {
  const char* why = nullptr;
  int warps_e = 1;  // warps along taps (1 or 2); the rest along filters
  int tile_e = 0, tile_k = 0;
  int dy_pitch = 0;  // floats per staged pixel of dy: tile_k + 4 (float4-aligned rows)
  StagedInput in;
  int m_tiles = 0;    // pixel tiles per image
  int64_t tiles = 0;  // N * m_tiles
  int e_groups = 0, k_groups = 0;
  int splits = 1;  // partial sums (grid.x); 1: the kernel writes dw itself
  int64_t tiles_per_split = 0;
  size_t smem_bytes = 0;
};

inline DirectFilterPlan direct_filter_plan(const Conv2dGeometry& g) {
  DirectFilterPlan pl;
  if ((pl.why = direct_problem(g))) return pl;
  const int64_t crs = int64_t(g.c) * g.r * g.s;
  pl.warps_e = crs > kBwdTapsPerWarp ? 2 : 1;
  pl.tile_e = pl.warps_e * kBwdTapsPerWarp;
  pl.tile_k = (kDirectWarps / pl.warps_e) * kBwdFilters;
  pl.dy_pitch = pl.tile_k + 4;
  pl.in = staged_input(g, kBwdPixels, true);
  const int64_t floats = pl.in.floats + int64_t(kBwdPixels) * pl.dy_pitch + kBwdPixels;
  if (floats > kDirectSmemFloats) {
    pl.why = "direct: the input tile exceeds the shared memory left beside dy";
    return pl;
  }
  const int64_t pq = int64_t(g.p) * g.q;
  pl.m_tiles = static_cast<int>((pq + kBwdPixels - 1) / kBwdPixels);
  pl.tiles = int64_t(g.n) * pl.m_tiles;
  const int64_t e_groups = (crs + pl.tile_e - 1) / pl.tile_e;
  const int64_t k_groups = (int64_t(g.k) + pl.tile_k - 1) / pl.tile_k;
  if (k_groups > 65535 || e_groups > 65535) {
    pl.why = "direct: too many blocks";
    return pl;
  }
  pl.e_groups = static_cast<int>(e_groups);
  pl.k_groups = static_cast<int>(k_groups);
  // Enough splits for about kFillBlocks blocks, one tile each at least.
  const int64_t groups = e_groups * k_groups > 0 ? e_groups * k_groups : 1;
  int64_t want = (kFillBlocks + groups - 1) / groups;
  if (want > kMaxDirectSplits) want = kMaxDirectSplits;
  if (want > pl.tiles) want = pl.tiles;
  if (want < 1) want = 1;
  pl.tiles_per_split = (pl.tiles + want - 1) / want;
  pl.splits = pl.tiles_per_split > 0
                  ? static_cast<int>((pl.tiles + pl.tiles_per_split - 1) / pl.tiles_per_split)
                  : 1;  // every split non-empty; no pixels at all: one split of zeros
  pl.smem_bytes = static_cast<size_t>(floats) * sizeof(float);
  return pl;
}

// Writes, per split z, the partial dw over its tiles to out + z * K * C*R*S (all of dw
// assigned, zeros where a split saw nothing). g.filter_size() > 0, plan.why == nullptr.
cudaError_t direct_filter(const DirectFilterPlan& plan, const Conv2dGeometry& g, const float* x,
                          const float* dy, float* out, cudaStream_t stream);

}  // namespace conv2d_detail
}  // namespace cnnk
