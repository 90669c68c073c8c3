// The augmentation reference: exact outputs for hand-worked draws, an independent
// flip-then-shift construction for random ones, the statistics of the draws, and the
// properties the trainer relies on (channels share a draw, options draw independently).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnk/augment.h"
#include "engine/core/error.h"
#include "engine/ops/augment/augment.h"

namespace cnn {
namespace {

using cnnk::AugmentDraw;
using cnnk::AugmentGeometry;

AugmentGeometry geometry(int n, int c, int h, int w, bool flip, int shift) {
  AugmentGeometry g;
  g.n = n;
  g.c = c;
  g.h = h;
  g.w = w;
  g.flip = flip;
  g.max_shift = shift;
  return g;
}

std::vector<float> iota_images(const AugmentGeometry& g) {
  std::vector<float> x(static_cast<size_t>(g.size()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);
  return x;
}

// The expected output built another way: mirror the whole plane first, then move it.
std::vector<float> flip_then_shift(const AugmentGeometry& g, uint64_t seed,
                                   const std::vector<float>& x) {
  std::vector<float> y(x.size(), 0.0f);
  const size_t plane = static_cast<size_t>(g.h) * static_cast<size_t>(g.w);
  for (int n = 0; n < g.n; ++n) {
    const AugmentDraw d = cnnk::augment_draw(g, seed, n);
    for (int c = 0; c < g.c; ++c) {
      const size_t base = (static_cast<size_t>(n) * g.c + c) * plane;
      std::vector<float> mirrored(plane);
      for (int i = 0; i < g.h; ++i)
        for (int j = 0; j < g.w; ++j)
          mirrored[static_cast<size_t>(i * g.w + j)] =
              x[base + static_cast<size_t>(i * g.w + (d.flip ? g.w - 1 - j : j))];
      for (int i = 0; i < g.h; ++i)
        for (int j = 0; j < g.w; ++j) {
          const int ti = i + d.dy, tj = j + d.dx;  // where the pixel lands
          if (ti >= 0 && ti < g.h && tj >= 0 && tj < g.w)
            y[base + static_cast<size_t>(ti * g.w + tj)] =
                mirrored[static_cast<size_t>(i * g.w + j)];
        }
    }
  }
  return y;
}

// The first seed whose sample 0 draws `want` (the draws are a pure function of the seed).
uint64_t seed_drawing(const AugmentGeometry& g, AugmentDraw want) {
  for (uint64_t seed = 0; seed < 100000; ++seed) {
    const AugmentDraw d = cnnk::augment_draw(g, seed, 0);
    if (d.flip == want.flip && d.dy == want.dy && d.dx == want.dx) return seed;
  }
  ADD_FAILURE() << "no seed draws the wanted transform";
  return 0;
}

TEST(Augment, NothingEnabledIsACopy) {
  const AugmentGeometry g = geometry(3, 2, 5, 4, false, 0);
  const std::vector<float> x = iota_images(g);
  std::vector<float> y(x.size(), -1.0f);
  ref::augment(g, 7, x.data(), y.data());
  EXPECT_EQ(y, x);
}

TEST(Augment, HandWorkedFlipAndShift) {
  // One 3x4 plane:  1  2  3  4 /  5  6  7  8 /  9 10 11 12.
  const AugmentGeometry g = geometry(1, 1, 3, 4, true, 1);
  const std::vector<float> x = iota_images(g);
  std::vector<float> y(x.size());

  // Mirrored:  4 3 2 1 / 8 7 6 5 / 12 11 10 9; then down 1 and left 1 (dy = 1, dx = -1).
  ref::augment(g, seed_drawing(g, {true, 1, -1}), x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 0, 3, 2, 1, 0, 7, 6, 5, 0}));

  // Not mirrored; up 1 and right 1 (dy = -1, dx = 1).
  ref::augment(g, seed_drawing(g, {false, -1, 1}), x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 5, 6, 7, 0, 9, 10, 11, 0, 0, 0, 0}));

  // Mirrored only.
  ref::augment(g, seed_drawing(g, {true, 0, 0}), x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9}));
}

TEST(Augment, RandomBatchesMatchAFlipThenShiftConstruction) {
  for (const bool flip : {false, true})
    for (const int shift : {0, 1, 3}) {
      const AugmentGeometry g = geometry(17, 3, 7, 9, flip, shift);
      const std::vector<float> x = iota_images(g);
      for (const uint64_t seed : {1ull, 42ull, 0xDEADBEEFull}) {
        std::vector<float> y(x.size(), NAN);
        ref::augment(g, seed, x.data(), y.data());
        EXPECT_EQ(y, flip_then_shift(g, seed, x)) << "flip " << flip << " shift " << shift;
      }
    }
}

TEST(Augment, ChannelsOfASampleShareItsDraw) {
  const AugmentGeometry g = geometry(8, 3, 6, 6, true, 2);
  // Every channel of a sample holds the same plane: the outputs must agree too.
  std::vector<float> x(static_cast<size_t>(g.size()));
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < g.c; ++c)
      for (int k = 0; k < 36; ++k)
        x[static_cast<size_t>((n * 3 + c) * 36 + k)] = float(n * 100 + k);
  std::vector<float> y(x.size());
  ref::augment(g, 99, x.data(), y.data());
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < 36; ++k) {
      const float v = y[static_cast<size_t>(n * 3 * 36 + k)];
      EXPECT_EQ(y[static_cast<size_t>((n * 3 + 1) * 36 + k)], v);
      EXPECT_EQ(y[static_cast<size_t>((n * 3 + 2) * 36 + k)], v);
    }
}

TEST(Augment, DrawsAreUniformAndWithinRange) {
  const int shift = 3;
  const AugmentGeometry g = geometry(1, 1, 28, 28, true, shift);
  const int n = 20000;
  int flips = 0;
  std::vector<int> dy_count(2 * shift + 1, 0), dx_count(2 * shift + 1, 0);
  for (int s = 0; s < n; ++s) {
    const AugmentDraw d = cnnk::augment_draw(g, 2024, s);
    flips += d.flip ? 1 : 0;
    ASSERT_GE(d.dy, -shift);
    ASSERT_LE(d.dy, shift);
    ASSERT_GE(d.dx, -shift);
    ASSERT_LE(d.dx, shift);
    ++dy_count[static_cast<size_t>(d.dy + shift)];
    ++dx_count[static_cast<size_t>(d.dx + shift)];
  }
  EXPECT_NEAR(flips / double(n), 0.5, 0.02);
  for (int k = 0; k < 2 * shift + 1; ++k) {
    EXPECT_NEAR(dy_count[static_cast<size_t>(k)] / double(n), 1.0 / 7.0, 0.015) << k - shift;
    EXPECT_NEAR(dx_count[static_cast<size_t>(k)] / double(n), 1.0 / 7.0, 0.015) << k - shift;
  }
}

TEST(Augment, EachOptionDrawsIndependently) {
  // Turning the flip on does not move the shifts, and the flip does not depend on them.
  const AugmentGeometry shift_only = geometry(1, 1, 8, 8, false, 2);
  const AugmentGeometry both = geometry(1, 1, 8, 8, true, 2);
  const AugmentGeometry flip_only = geometry(1, 1, 8, 8, true, 0);
  int differ = 0;
  for (int s = 0; s < 200; ++s) {
    const AugmentDraw a = cnnk::augment_draw(shift_only, 5, s);
    const AugmentDraw b = cnnk::augment_draw(both, 5, s);
    const AugmentDraw c = cnnk::augment_draw(flip_only, 5, s);
    EXPECT_FALSE(a.flip);
    EXPECT_EQ(a.dy, b.dy);
    EXPECT_EQ(a.dx, b.dx);
    EXPECT_EQ(b.flip, c.flip);
    EXPECT_EQ(c.dy, 0);
    EXPECT_EQ(c.dx, 0);
    differ += cnnk::augment_draw(both, 6, s).dx != b.dx ? 1 : 0;
  }
  EXPECT_GT(differ, 100) << "another seed should draw other shifts";
}

TEST(Augment, RefusesInPlaceAndNegativeShapes) {
  const AugmentGeometry g = geometry(1, 1, 4, 4, true, 1);
  std::vector<float> x(16, 1.0f);
  std::vector<float> y(16);
  EXPECT_THROW(ref::augment(g, 1, x.data(), x.data()), Error);
  EXPECT_NO_THROW(ref::augment(g, 1, x.data(), y.data()));
  // Each negative size or shift on its own, into a separate output.
  EXPECT_THROW(ref::augment(geometry(1, 1, 4, 4, true, -1), 1, x.data(), y.data()), ConfigError);
  EXPECT_THROW(ref::augment(geometry(-1, 1, 4, 4, true, 1), 1, x.data(), y.data()), ConfigError);
  EXPECT_THROW(ref::augment(geometry(1, -1, 4, 4, true, 1), 1, x.data(), y.data()), ConfigError);
  EXPECT_THROW(ref::augment(geometry(1, 1, -4, 4, true, 1), 1, x.data(), y.data()), ConfigError);
  EXPECT_THROW(ref::augment(geometry(1, 1, 4, -4, true, 1), 1, x.data(), y.data()), ConfigError);
  // An empty batch is fine.
  ref::augment(geometry(0, 1, 4, 4, true, 1), 1, nullptr, nullptr);
}

}  // namespace
}  // namespace cnn
