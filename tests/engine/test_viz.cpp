// The pictures: font and canvas, axis ticks, training curves (from a History and from a
// CSV), the filter grid, feature maps, and the confusion matrix. Each picture is
// decoded back from its PNG and checked for its size and for content a person would
// see: tiles where they should be, the diagonal bright, the curves in their colours.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/executor.h"
#include "engine/graph/layers.h"
#include "engine/graph/parameters.h"
#include "engine/graph/zoo.h"
#include "engine/io/png.h"
#include "engine/train/progress.h"
#include "engine/viz/canvas.h"
#include "engine/viz/confusion.h"
#include "engine/viz/curves.h"
#include "engine/viz/font.h"
#include "engine/viz/grids.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using viz::Rgb;

class VizFiles : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  test::ScratchDir dir_{"cnn_viz"};
};

Rgb pixel(const Image8& img, int x, int y) {
  return {img.at(x, y, 0), img.at(x, y, 1), img.at(x, y, 2)};
}
bool same(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
// How many pixels are close to colour c (each channel within tol).
int64_t count_near(const Image8& img, Rgb c, int tol = 40) {
  int64_t n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const Rgb p = pixel(img, x, y);
      if (std::abs(p.r - c.r) <= tol && std::abs(p.g - c.g) <= tol && std::abs(p.b - c.b) <= tol)
        ++n;
    }
  return n;
}

// ------------------------------------------------------------------- font, canvas

TEST(VizFont, EveryPrintableCharacterHasInkExceptTheSpace) {
  for (int c = 33; c <= 126; ++c) {
    const uint8_t* g = viz::glyph(static_cast<char>(c));
    int ink = 0;
    for (int row = 0; row < viz::kGlyphHeight; ++row) ink += g[row] != 0;
    EXPECT_GT(ink, 0) << "'" << static_cast<char>(c) << "'";
    for (int row = 0; row < viz::kGlyphHeight; ++row)
      EXPECT_LT(g[row], 1 << viz::kGlyphWidth) << "'" << static_cast<char>(c) << "' row " << row;
  }
  const uint8_t* space = viz::glyph(' ');
  for (int row = 0; row < viz::kGlyphHeight; ++row) EXPECT_EQ(space[row], 0);
  // Unprintable characters draw as a box, not as nothing.
  EXPECT_EQ(viz::glyph('\t')[0], 0x1f);
  EXPECT_EQ(viz::text_width("abc", 2), (3 * viz::kCellWidth - 1) * 2);
  EXPECT_EQ(viz::text_width(""), 0);
}

TEST(VizFont, LettersAreDistinct) {
  for (int a = 33; a <= 126; ++a)
    for (int b = a + 1; b <= 126; ++b) {
      const uint8_t* ga = viz::glyph(static_cast<char>(a));
      const uint8_t* gb = viz::glyph(static_cast<char>(b));
      bool differ = false;
      for (int row = 0; row < viz::kGlyphHeight; ++row) differ |= ga[row] != gb[row];
      EXPECT_TRUE(differ) << "'" << static_cast<char>(a) << "' and '" << static_cast<char>(b)
                          << "'";
    }
}

TEST(VizCanvas, TextInksOnlyItsBox) {
  viz::Canvas cv(100, 40);
  const int w = cv.text(10, 10, "Ag", viz::colors::kBlack, 2);
  EXPECT_EQ(w, viz::text_width("Ag", 2));
  int ink = 0;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 100; ++x)
      if (!same(cv.pixel(x, y), viz::colors::kWhite)) {
        ++ink;
        EXPECT_TRUE(x >= 10 && x < 10 + w && y >= 10 && y < 10 + viz::text_height(2))
            << x << "," << y;
      }
  EXPECT_GT(ink, 20);
}

TEST(VizCanvas, LinesAreAntiAliased) {
  viz::Canvas cv(60, 60);
  // Horizontal, 2 px wide, centred on a pixel boundary: two full rows.
  cv.line({5, 10}, {50, 10}, viz::colors::kBlack, 2.0);
  EXPECT_TRUE(same(cv.pixel(20, 9), viz::colors::kBlack));
  EXPECT_TRUE(same(cv.pixel(20, 10), viz::colors::kBlack));
  EXPECT_TRUE(same(cv.pixel(20, 12), viz::colors::kWhite));
  // A shallow diagonal leaves partly covered pixels: grays between black and white.
  cv.line({5, 30}, {55, 45}, viz::colors::kBlack, 1.5);
  int partial = 0;
  for (int y = 25; y < 50; ++y)
    for (int x = 5; x < 56; ++x) {
      const int v = cv.pixel(x, y).r;
      partial += v > 20 && v < 235;
    }
  EXPECT_GT(partial, 30);
}

TEST(VizCanvas, DashedLinesLeaveGaps) {
  viz::Canvas cv(100, 10);
  cv.line({0, 5}, {100, 5}, viz::colors::kBlack, 2, 5);
  int drawn = 0;
  for (int x = 0; x < 100; ++x) drawn += cv.pixel(x, 5).r < 128;
  EXPECT_GT(drawn, 35);
  EXPECT_LT(drawn, 65);
}

TEST(VizCanvas, ColourMapsRunDarkToBright) {
  EXPECT_TRUE(same(viz::viridis(0), Rgb{68, 1, 84}));
  EXPECT_TRUE(same(viz::viridis(1), Rgb{253, 231, 37}));
  EXPECT_TRUE(same(viz::viridis(2), viz::viridis(1)));  // clamped
  EXPECT_TRUE(same(viz::viridis(NAN), viz::viridis(0)));
  for (int i = 0; i < 10; ++i)
    EXPECT_LT(viz::luminance(viz::viridis(i / 10.0)), viz::luminance(viz::viridis((i + 1) / 10.0)));
  EXPECT_TRUE(same(viz::gray(0.5), Rgb{128, 128, 128}));
}

// --------------------------------------------------------------------------- ticks

TEST(VizTicks, PickNiceStepsThatFrameTheRange) {
  viz::Ticks t = viz::nice_ticks(0.23, 0.91, 5);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  EXPECT_NEAR(t.first, 0.2, 1e-12);
  EXPECT_NEAR(t.last, 1.0, 1e-12);
  EXPECT_EQ(t.decimals, 1);
  EXPECT_EQ(t.values().size(), 5u);

  t = viz::nice_ticks(0.7, 0.9, 5);  // raw step 0.04: 0.05
  EXPECT_DOUBLE_EQ(t.step, 0.05);
  EXPECT_EQ(t.decimals, 2);

  t = viz::nice_ticks(0.75, 0.875, 5);  // raw 0.025
  EXPECT_DOUBLE_EQ(t.step, 0.025);
  EXPECT_EQ(t.decimals, 3);

  t = viz::nice_ticks(0, 1200, 5);
  EXPECT_DOUBLE_EQ(t.step, 250);
  EXPECT_EQ(t.decimals, 0);

  t = viz::nice_ticks(0.5, 0.5, 5);  // a flat range still gets an interval around it
  EXPECT_LT(t.first, 0.5);
  EXPECT_GT(t.last, 0.5);
}

TEST(VizTicks, EveryEpochUpToTenIsLabelledThenRoundSteps) {
  using V = std::vector<int>;
  EXPECT_EQ(viz::epoch_ticks(0), V{});
  EXPECT_EQ(viz::epoch_ticks(1), V{1});
  EXPECT_EQ(viz::epoch_ticks(2), (V{1, 2}));  // a two-epoch run labels both
  EXPECT_EQ(viz::epoch_ticks(10), (V{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(viz::epoch_ticks(11), (V{2, 4, 6, 8, 10}));
  EXPECT_EQ(viz::epoch_ticks(25), (V{5, 10, 15, 20, 25}));
  EXPECT_EQ(viz::epoch_ticks(100), (V{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}));
  EXPECT_EQ(viz::epoch_ticks(111), (V{20, 40, 60, 80, 100}));
  for (int n = 1; n <= 5000; n += 7) {
    const V t = viz::epoch_ticks(n);
    ASSERT_FALSE(t.empty()) << n;
    EXPECT_LE(t.size(), 10u) << n;
    EXPECT_LE(t.back(), n) << n;
  }
}

// -------------------------------------------------------------------------- curves

History sample_history(int epochs, bool validation) {
  History h;
  for (int e = 1; e <= epochs; ++e) {
    EpochLog l;
    l.epoch = e;
    l.loss = 1.0 / e;
    l.accuracy = 1.0 - 0.5 / e;
    if (validation) {
      l.val_loss = 1.2 / e + 0.01 * e;
      l.val_accuracy = 0.95 - 0.5 / e;
    }
    h.epochs.push_back(l);
  }
  return h;
}

TEST_F(VizFiles, CurvesDrawTrainAndValidationInTheirColours) {
  History h = sample_history(8, true);
  h.best_epoch = 5;
  viz::write_curves_png(h, path("curves.png"));
  const Image8 img = read_png(path("curves.png"));
  EXPECT_EQ(img.width, 1200);
  EXPECT_EQ(img.height, 480);
  EXPECT_EQ(img.channels, 3);
  // Lines and markers: hundreds of pixels of each colour, in both panels.
  const auto count_in = [&](Rgb c, int x0, int x1) {
    int64_t n = 0;
    for (int y = 100; y < img.height; ++y)
      for (int x = x0; x < x1; ++x) {
        const Rgb p = pixel(img, x, y);
        n += std::abs(p.r - c.r) <= 30 && std::abs(p.g - c.g) <= 30 && std::abs(p.b - c.b) <= 30;
      }
    return n;
  };
  EXPECT_GT(count_in(viz::colors::kBlue, 0, 600), 300);
  EXPECT_GT(count_in(viz::colors::kOrange, 0, 600), 300);
  EXPECT_GT(count_in(viz::colors::kBlue, 600, 1200), 300);
  EXPECT_GT(count_in(viz::colors::kOrange, 600, 1200), 300);
}

TEST_F(VizFiles, CurvesWithoutValidationHaveNoOrange) {
  viz::write_curves_png(sample_history(3, false), path("c.png"));
  const Image8 img = read_png(path("c.png"));
  EXPECT_GT(count_near(img, viz::colors::kBlue, 30), 300);
  EXPECT_EQ(count_near(img, viz::colors::kOrange, 30), 0);
}

TEST(VizCurves, SurviveOneEpochNoEpochsAndNonFiniteValues) {
  const Image8 one = viz::render_curves(sample_history(1, true));
  EXPECT_GT(count_near(one, viz::colors::kBlue, 30), 40);  // a marker, even without a line
  const Image8 none = viz::render_curves(History{});
  EXPECT_EQ(none.width, 1200);
  History bad = sample_history(4, true);
  bad.epochs[2].loss = NAN;
  bad.epochs[3].val_loss = INFINITY;
  const Image8 img = viz::render_curves(bad);
  EXPECT_EQ(img.height, 480);
}

TEST(VizCurves, TheBestEpochsLabelStaysInsideItsPanel) {
  // The best epoch is the last: its label goes left of the dashed line, so the strip
  // between the loss panel's right edge (x 560) and the accuracy panel's tick labels
  // stays background.
  for (int best : {1, 2}) {
    History h = sample_history(2, true);
    h.best_epoch = best;
    const Image8 img = viz::render_curves(h);
    int64_t ink = 0;
    for (int y = 100; y < 200; ++y)
      for (int x = 564; x < 620; ++x) ink += !same(pixel(img, x, y), viz::colors::kWhite);
    EXPECT_EQ(ink, 0) << "best epoch " << best;
  }
}

TEST(VizCurves, ReadsKerasCsvLoggerFiles) {
  const History h = viz::history_from_csv(
      "epoch,accuracy,loss,val_accuracy,val_loss\n"
      "0,0.80,0.55,0.84,0.45\n"
      "1,0.86,0.39,0.85,0.41\n");
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(h.epochs[0].epoch, 1);  // Keras counts from 0
  EXPECT_EQ(h.epochs[1].epoch, 2);
  EXPECT_DOUBLE_EQ(h.epochs[1].loss, 0.39);
  EXPECT_DOUBLE_EQ(h.epochs[1].accuracy, 0.86);
  EXPECT_DOUBLE_EQ(*h.epochs[0].val_loss, 0.45);
  EXPECT_DOUBLE_EQ(*h.epochs[0].val_accuracy, 0.84);
}

// What our CsvLogger writes (\r\n line ends, as Keras's) reads back as the same history.
TEST(VizCurves, ReadsBackTheHistoryCsvWeWrite) {
  History h;
  for (int e = 1; e <= 3; ++e) {
    EpochLog log;
    log.epoch = e;
    log.loss = 1.0 / e;
    log.accuracy = 0.5 + 0.1 * e;
    log.val_loss = 1.5 / e;
    log.val_accuracy = 0.4 + 0.1 * e;
    h.epochs.push_back(log);
  }
  const History back = viz::history_from_csv(history_csv(h, false));
  ASSERT_EQ(back.epochs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.epochs[i].epoch, h.epochs[i].epoch);
    EXPECT_DOUBLE_EQ(back.epochs[i].loss, h.epochs[i].loss);
    EXPECT_DOUBLE_EQ(back.epochs[i].accuracy, h.epochs[i].accuracy);
    EXPECT_DOUBLE_EQ(*back.epochs[i].val_loss, *h.epochs[i].val_loss);
    EXPECT_DOUBLE_EQ(*back.epochs[i].val_accuracy, *h.epochs[i].val_accuracy);
  }
}

TEST(VizCurves, ReadsMissingValuesWrittenAsNaAndExtraColumns) {
  const History h = viz::history_from_csv(
      "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
      "0,0.5,0.001,1.25,NA,NA\n"
      "1,0.75,0.0005,nan,0.7,0.8\n");
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_FALSE(h.epochs[0].val_loss.has_value());
  EXPECT_FALSE(h.epochs[0].val_accuracy.has_value());
  EXPECT_DOUBLE_EQ(h.epochs[0].loss, 1.25);
  EXPECT_TRUE(std::isnan(h.epochs[1].loss));  // kept, and left out of the picture
  EXPECT_DOUBLE_EQ(*h.epochs[1].val_accuracy, 0.7);
  EXPECT_EQ(viz::render_curves(h).width, 1200);
}

TEST(VizCurves, CsvColumnsByNameEpochsFromOneAndEmptyValidation) {
  const History h =
      viz::history_from_csv("loss,epoch,seconds,val_loss\r\n1.5,1,2.0,\r\n1.0,2,2.1,0.9\r\n\r\n");
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(h.epochs[0].epoch, 1);
  EXPECT_FALSE(h.epochs[0].val_loss.has_value());
  EXPECT_DOUBLE_EQ(*h.epochs[1].val_loss, 0.9);
  EXPECT_TRUE(std::isnan(h.epochs[0].accuracy));  // no accuracy column
}

TEST(VizCurves, RefusesMalformedCsvNamingTheLine) {
  const auto message = [](const std::string& text) {
    try {
      viz::history_from_csv(text, "h.csv");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_NE(message("epoch,accuracy\n0,0.5\n").find("no 'loss' column"), std::string::npos);
  EXPECT_NE(message("epoch,loss\n0,0.5\n1,abc\n").find("line 3"), std::string::npos);
  EXPECT_NE(message("epoch,loss\n0,0.5,7\n").find("line 2"), std::string::npos);
  EXPECT_NE(message("epoch,loss\n0,\n").find("loss is empty"), std::string::npos);
}

// ------------------------------------------------------------------------- filters

TEST(VizFilters, OneTilePerFilterInANearSquareGrid) {
  const int k = 64, r = 7, s = 7;
  std::vector<float> w(static_cast<size_t>(k * r * s));
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  const viz::GridPicture pic = viz::render_filters(w.data(), k, 1, r, s, "conv2d: 64 filters 7x7");
  const viz::GridLayout& g = pic.layout;
  EXPECT_EQ(g.count, 64);
  EXPECT_EQ(g.cols, 8);
  EXPECT_EQ(g.rows, 8);
  EXPECT_EQ(g.tile_w, 42);  // 7 pixels magnified 6 times
  EXPECT_EQ(g.tile_h, 42);
  // The last tile lies inside the picture.
  EXPECT_LE(g.tile_x(63) + g.tile_w, pic.image.width);
  EXPECT_LE(g.tile_y(63) + g.tile_h, pic.image.height);

  // Along the frames of the first row of tiles: 8 runs, split by the white gaps.
  const int y = g.tile_y(0) - 1;
  int runs = 0;
  bool in_run = false;
  for (int x = 0; x < pic.image.width; ++x) {
    const bool background = same(pixel(pic.image, x, y), viz::colors::kWhite);
    if (!background && !in_run) ++runs;
    in_run = !background;
  }
  EXPECT_EQ(runs, 8);

  // Each filter is scaled on its own: its smallest weight is black, its largest white.
  for (int f : {0, 17, 63}) {
    const float* fw = w.data() + f * r * s;
    int lo = 0, hi = 0;
    for (int i = 1; i < r * s; ++i) {
      if (fw[i] < fw[lo]) lo = i;
      if (fw[i] > fw[hi]) hi = i;
    }
    const auto centre = [&](int i) {
      return pixel(pic.image, g.tile_x(f) + (i % s) * 6 + 3, g.tile_y(f) + (i / s) * 6 + 3);
    };
    EXPECT_TRUE(same(centre(lo), viz::colors::kBlack)) << "filter " << f;
    EXPECT_TRUE(same(centre(hi), viz::colors::kWhite)) << "filter " << f;
  }
}

TEST(VizFilters, ManyInputChannelsSitSideBySideAndThreeAreColour) {
  std::vector<float> w(4 * 2 * 3 * 3, 0.5f);
  const viz::GridPicture two = viz::render_filters(w.data(), 4, 2, 3, 3, "t");
  EXPECT_EQ(two.layout.tile_w, 2 * 3 * two.layout.tile_h / 3 + 2);
  std::vector<float> rgb(2 * 3 * 3 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = (i / 9) % 3 == 0 ? 1.0f : 0.0f;  // red only
  const viz::GridPicture col = viz::render_filters(rgb.data(), 2, 3, 3, 3, "t");
  EXPECT_EQ(col.layout.tile_w, col.layout.tile_h);
  const Rgb p = pixel(col.image, col.layout.tile_x(0) + 2, col.layout.tile_y(0) + 2);
  EXPECT_TRUE(same(p, Rgb{255, 0, 0}));
  EXPECT_THROW(viz::render_filters(w.data(), 0, 1, 3, 3, "t"), ConfigError);
}

TEST_F(VizFiles, WritesTheFirstConvolutionsFiltersOfAModel) {
  Model m = build_model("mnist-cnn");
  CpuBackend be;
  Parameters p(m, be);
  p.initialize(1);
  viz::write_filters_png(m, p, path("filters.png"));
  const Image8 img = read_png(path("filters.png"));
  // 16 filters 3x3: a 4x4 grid of 42-pixel tiles (3 magnified 14 times).
  // The first Conv2D's kernel as it is, drawn: the picture's every pixel.
  const Parameters::Entry& kernel = p.find("conv2d/kernel");
  std::vector<float> w(static_cast<size_t>(kernel.value.numel()));
  p.read(kernel, w.data());
  ASSERT_EQ(w.size(), 16u * 9u);
  const viz::GridPicture expect =
      viz::render_filters(w.data(), 16, 1, 3, 3, "conv2d: 16 filters 3x3");
  EXPECT_EQ(img.width, expect.image.width);
  EXPECT_EQ(img.height, expect.image.height);
  EXPECT_EQ(img.pixels, expect.image.pixels);
  EXPECT_EQ(expect.layout.cols, 4);
  EXPECT_EQ(expect.layout.tile_w, 42);
  // Other weights, another picture.
  const viz::GridPicture zeros = viz::render_filters(std::vector<float>(16 * 9, 0.0f).data(), 16, 1,
                                                     3, 3, "conv2d: 16 filters 3x3");
  EXPECT_NE(img.pixels, zeros.image.pixels);

  Model dense_only("dense-only");
  dense_only.input(Shape{4});
  dense_only.add(layers::dense(2, Activation::Softmax));
  dense_only.finish();
  Parameters dp(dense_only, be);
  EXPECT_THROW(viz::write_filters_png(dense_only, dp, path("none.png")), ConfigError);
}

// -------------------------------------------------------------------- feature maps

TEST(VizFeatureMaps, OneTilePerChannelBesideTheInput) {
  const int c = 6, h = 5, w = 5;
  std::vector<float> maps(static_cast<size_t>(c * h * w));
  for (size_t i = 0; i < maps.size(); ++i) maps[i] = static_cast<float>(i % 7);
  std::vector<float> input(28 * 28, 0.25f);
  const viz::GridPicture pic =
      viz::render_feature_maps(maps.data(), c, h, w, input.data(), 1, 28, 28, "maps");
  EXPECT_EQ(pic.layout.count, 6);
  EXPECT_EQ(pic.layout.cols, 3);
  EXPECT_EQ(pic.layout.rows, 2);
  EXPECT_EQ(pic.layout.tile_w, 85);  // 5 pixels magnified 17 times
  // The tiles are coloured, the input gray.
  const Rgb tile = pixel(pic.image, pic.layout.tile_x(0) + 1, pic.layout.tile_y(0) + 1);
  EXPECT_TRUE(same(tile, viz::viridis(0)));  // value 0, the channel's minimum
  EXPECT_GE(pic.layout.tile_x(0), 28 * 6);   // right of the input (28 magnified 6 times)
  const Rgb in = pixel(pic.image, 40, pic.layout.tile_y(0) + 40);
  EXPECT_TRUE(same(in, Rgb{64, 64, 64}));
}

TEST_F(VizFiles, FeatureMapsOfAModelLayerThroughTheCallersExecutor) {
  Model m = build_model("mnist-cnn");
  CpuBackend be;
  Parameters p(m, be);
  p.initialize(2);
  Executor ex(m, p, be, 8);
  Tensor img = Tensor::zeros_host(Shape{1, 28, 28});
  for (int i = 0; i < 28; ++i) img.host()[i * 28 + i] = 1.0f;  // a diagonal stroke
  viz::write_feature_maps_png(ex, m, img, "", path("conv.png"));
  const Image8 a = read_png(path("conv.png"));
  EXPECT_GT(a.width, 300);
  viz::write_feature_maps_png(ex, m, img.reshape(Shape{1, 1, 28, 28}), "max_pooling2d_1",
                              path("pool.png"));
  EXPECT_GT(read_png(path("pool.png")).width, 300);
  // The executor still serves its full batch afterwards.
  const Tensor x = Tensor::zeros_host(Shape{8, 1, 28, 28});
  EXPECT_EQ(ex.forward(x, false).shape(), (Shape{8, 10}));

  const auto message = [&](const std::string& layer, const Tensor& image) {
    try {
      viz::write_feature_maps_png(ex, m, image, layer, path("x.png"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string dense = message("dense", img);
  EXPECT_NE(dense.find("not feature maps"), std::string::npos) << dense;
  EXPECT_NE(dense.find("conv2d_1"), std::string::npos) << dense;  // lists the candidates
  EXPECT_NE(message("nope", img).find("no layer named 'nope'"), std::string::npos);
  EXPECT_NE(message("", Tensor::zeros_host(Shape{1, 14, 14})).find("takes one image"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(path("x.png")));
}

// ----------------------------------------------------------------- confusion matrix

TEST(VizConfusion, CountsPairsAndRefusesIdsOutOfRange) {
  const viz::ConfusionMatrix m = viz::confusion_matrix({0, 0, 1, 2, 2, 2}, {0, 1, 1, 2, 2, 0}, 3);
  EXPECT_EQ(m.at(0, 0), 1);
  EXPECT_EQ(m.at(0, 1), 1);
  EXPECT_EQ(m.at(2, 0), 1);
  EXPECT_EQ(m.at(2, 2), 2);
  EXPECT_EQ(m.total(), 6);
  EXPECT_EQ(m.correct(), 4);
  EXPECT_EQ(m.row_total(2), 3);
  EXPECT_DOUBLE_EQ(m.accuracy(), 4.0 / 6.0);
  EXPECT_THROW(viz::confusion_matrix({0, 3}, {0, 0}, 3), ConfigError);
  EXPECT_THROW(viz::confusion_matrix({0, -1}, {0, 0}, 3), ConfigError);
  EXPECT_THROW(viz::confusion_matrix({0}, {0, 0}, 3), ConfigError);
}

TEST(VizConfusion, FromLabelsAndScoresTakesTheLargestScore) {
  Tensor labels = Tensor::empty_host(Shape{3});
  labels.host()[0] = 2;
  labels.host()[1] = 0;
  labels.host()[2] = 1;
  Tensor scores = Tensor::empty_host(Shape{3, 3});
  const float s[] = {0.1f, 0.2f, 0.7f, 0.5f, 0.5f, 0.0f, 0.9f, 0.05f, 0.05f};
  std::copy(std::begin(s), std::end(s), scores.host());
  EXPECT_EQ(viz::argmax_rows(scores), (std::vector<int>{2, 0, 0}));  // a tie: the first
  const viz::ConfusionMatrix m = viz::confusion_matrix(labels, scores);
  EXPECT_EQ(m.at(2, 2), 1);
  EXPECT_EQ(m.at(0, 0), 1);
  EXPECT_EQ(m.at(1, 0), 1);
  EXPECT_THROW(viz::confusion_matrix(Tensor::empty_host(Shape{2}), scores), ConfigError);
}

TEST(VizConfusion, ClassNames) {
  const auto& f = viz::class_names("fashion-mnist");
  ASSERT_EQ(f.size(), 10u);
  EXPECT_EQ(f[0], "T-shirt/top");
  EXPECT_EQ(f[9], "Ankle boot");
  EXPECT_EQ(viz::class_names("mnist")[7], "7");
  EXPECT_THROW(viz::class_names("cifar"), ConfigError);
}

TEST_F(VizFiles, HeatmapDiagonalIsBrightForADiagonalMatrix) {
  std::vector<int> truth, pred;
  for (int c = 0; c < 10; ++c)
    for (int i = 0; i < 100; ++i) {
      truth.push_back(c);
      pred.push_back(c);
    }
  const viz::ConfusionMatrix m = viz::confusion_matrix(truth, pred, 10);
  const auto& names = viz::class_names("fashion-mnist");
  viz::write_confusion_png(m, names, path("confusion.png"));
  const Image8 img = read_png(path("confusion.png"));
  const Image8 direct = viz::render_confusion(m, names);
  EXPECT_EQ(img.width, direct.width);
  EXPECT_EQ(img.height, direct.height);
  const viz::CellRect c00 = viz::confusion_cell(m, names, 0, 0);
  EXPECT_EQ(c00.size, 56);
  EXPECT_GE(img.width, c00.x + 10 * c00.size);
  for (int t = 0; t < 10; ++t) {
    const viz::CellRect diag = viz::confusion_cell(m, names, t, t);
    const viz::CellRect off = viz::confusion_cell(m, names, t, (t + 3) % 10);
    // A corner of the cell, away from the count's text.
    const double bright = viz::luminance(pixel(img, diag.x + 4, diag.y + 4));
    const double dark = viz::luminance(pixel(img, off.x + 4, off.y + 4));
    EXPECT_GT(bright, dark + 100) << "row " << t;
  }
  // The count is written in the cell: dark text on the bright diagonal.
  int text = 0;
  const viz::CellRect d = viz::confusion_cell(m, names, 4, 4);
  for (int y = d.y; y < d.y + d.size; ++y)
    for (int x = d.x; x < d.x + d.size; ++x) text += viz::luminance(pixel(img, x, y)) < 60;
  EXPECT_GT(text, 40);
}

TEST(VizConfusion, WorksWithoutNamesAndRefusesAWrongNameCount) {
  const viz::ConfusionMatrix m = viz::confusion_matrix({0, 1, 2}, {0, 1, 1}, 3);
  const Image8 img = viz::render_confusion(m, {});
  EXPECT_GT(img.width, 3 * 56);
  EXPECT_THROW(viz::render_confusion(m, {"a", "b"}), ConfigError);
  // Large counts still fit their cells, in the small font.
  viz::ConfusionMatrix big = m;
  big.counts[0] = 123456;
  EXPECT_NO_THROW(viz::render_confusion(big, {}));
}

}  // namespace
}  // namespace cnn
