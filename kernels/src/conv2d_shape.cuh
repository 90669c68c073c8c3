// The convolution geometry every conv kernel of this folder indexes with, as plain ints in
// its launch arguments (tile indexing is 32-bit; geometry_problem in conv2d_igemm.cuh
// refuses what would not fit).
#pragma once

#include "cnnk/geometry.h"

namespace cnnk {
namespace conv2d_detail {

struct ConvShape {
  int c, in_h, in_w, k, r, s, p, q, sh, sw, pt, pl;
  int rs, crs, hw, pq;  // r*s, c*r*s, h*w, p*q
};

inline ConvShape conv_shape(const Conv2dGeometry& g) {
  ConvShape d;
  d.c = g.c;
  d.in_h = g.h;
  d.in_w = g.w;
  d.k = g.k;
  d.r = g.r;
  d.s = g.s;
  d.p = g.p;
  d.q = g.q;
  d.sh = g.stride_h;
  d.sw = g.stride_w;
  d.pt = g.pad_top;
  d.pl = g.pad_left;
  d.rs = g.r * g.s;
  d.crs = g.c * g.r * g.s;
  d.hw = g.h * g.w;
  d.pq = g.p * g.q;
  return d;
}

}  // namespace conv2d_detail
}  // namespace cnnk
