// The kernel simulator's stand-in for CUDA's <mma.h>: the warp matrix (wmma) calls the
// TF32 implicit GEMM uses. A real fragment spreads its tile over the warp's 32 lanes in an
// unspecified layout, and code may touch it only through the wmma calls and element-wise
// loops over x[]. Here each lane's x[] holds the whole tile, but of an accumulator a lane
// owns (computes in mma_sync and writes in store_matrix_sync) only the elements e with
// e % 32 == its lane, so the warp does the work of one product, not 32, and a store that
// not every lane makes leaves its part of the tile unwritten, as on the hardware. Outside
// a kernel the single caller owns every element.
#pragma once

#include <cstdint>
#include <cstring>

#include "cnnk_sim.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

namespace sim_detail {
// The accumulator elements the running thread owns: first, first + step, ...
struct Owned {
  int first, step;
};
inline Owned owned() {
  const int lane = ::cnnk_sim::lane_or_none();
  return lane < 0 ? Owned{0, 1} : Owned{lane, 32};
}

// Rows and columns of the tile a fragment holds, for shape m x n x k.
template <class Use, int M, int N, int K>
struct TileShape;
template <int M, int N, int K>
struct TileShape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct TileShape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct TileShape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};
}  // namespace sim_detail

// x[] holds the whole tile, row-major: x[i * cols + j] is element (i, j).
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = sim_detail::TileShape<Use, M, N, K>::rows;
  static constexpr int cols = sim_detail::TileShape<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  float x[num_elements];
};

// Rounds to TF32 (10 explicit mantissa bits) to nearest, ties away from zero, as the
// hardware's cvt.rna.tf32.f32; the result is a float whose low 13 mantissa bits are zero.
inline float __float_to_tf32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) {  // finite: round the magnitude
    bits += 0x1000u;
    bits &= ~0x1fffu;
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float v) {
  for (float& e : f.x) e = v;
}

// matrix_a / matrix_b from memory laid out as the fragment's Layout says, ldm elements
// between rows (row_major) or columns (col_major).
template <class Use, int M, int N, int K, class T>
void load_matrix_sync(fragment<Use, M, N, K, T, row_major>& f, const float* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, row_major>;
  for (int i = 0; i < F::rows; ++i)
    for (int j = 0; j < F::cols; ++j) f.x[i * F::cols + j] = p[size_t(i) * ldm + j];
}
template <class Use, int M, int N, int K, class T>
void load_matrix_sync(fragment<Use, M, N, K, T, col_major>& f, const float* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, col_major>;
  for (int i = 0; i < F::rows; ++i)
    for (int j = 0; j < F::cols; ++j) f.x[i * F::cols + j] = p[i + size_t(j) * ldm];
}

template <int M, int N, int K, class T>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm,
                       layout_t layout) {
  const sim_detail::Owned own = sim_detail::owned();
  for (int e = own.first; e < M * N; e += own.step) {
    const int i = e / N, j = e % N;
    p[layout == mem_row_major ? size_t(i) * ldm + j : i + size_t(j) * ldm] = f.x[e];
  }
}

// d = a * b + c on the owned elements, products and sums in float, k in order.
template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b,
              const fragment<accumulator, M, N, K, TC>& c) {
  const sim_detail::Owned own = sim_detail::owned();
  for (int e = own.first; e < M * N; e += own.step) {
    const int i = e / N, j = e % N;
    float s = c.x[e];
    for (int k = 0; k < K; ++k) s += a.x[i * K + k] * b.x[k * N + j];
    d.x[e] = s;  // d may be c: element e of c is read before it is written
  }
}

}  // namespace wmma
}  // namespace nvcuda
