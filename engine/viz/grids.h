// Pictures of what a network has learned and computes: the first convolution's filters
// as a grid of tiles, and the feature maps of one layer for one input image.
#pragma once

#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/graph/executor.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/png.h"

namespace cnn::viz {

// Where the tiles of a grid lie on its picture: tile i is at column i % cols, row
// i / cols, tile_w x tile_h pixels, `gap` pixels of background between tiles.
struct GridLayout {
  int count = 0, cols = 0, rows = 0;
  int x0 = 0, y0 = 0;  // top-left of the first tile
  int tile_w = 0, tile_h = 0, gap = 0;
  int tile_x(int i) const { return x0 + (i % cols) * (tile_w + gap); }
  int tile_y(int i) const { return y0 + (i / cols) * (tile_h + gap); }
};

struct GridPicture {
  Image8 image;  // RGB
  GridLayout layout;
};

// Filters from host data: weights [k, c, r, s] (OIHW). One tile per filter; a filter of
// c > 1 input channels shows its channels side by side within the tile (three channels
// as one colour tile). Each filter is scaled on its own: its smallest weight black, its
// largest white (a constant filter is mid-gray). Tiles are magnified by whole pixels to
// about 42 pixels a side, gray background between them.
GridPicture render_filters(const float* weights, int k, int c, int r, int s,
                           const std::string& title);

// Feature maps from host data: maps [c, h, w] of one image, one tile per channel,
// coloured with viridis after scaling each channel on its own (its minimum dark purple,
// its maximum yellow; a constant channel is dark). `input` ([ic, ih, iw], values in
// [0, 1], may be empty) is shown on the left, in gray.
GridPicture render_feature_maps(const float* maps, int c, int h, int w, const float* input, int ic,
                                int ih, int iw, const std::string& title);

// The first Conv2D layer of `model` (in node order), or -1 when it has none.
int first_conv_node(const Model& model);

// The first convolution's filters, read from `params` (on any backend), to `path`.
// Throws ConfigError when the model has no Conv2D layer.
void write_filters_png(const Model& model, const Parameters& params, const std::string& path);

// Runs `image` ([1, C, H, W] or [C, H, W], host, the model's input shape) through
// `executor` in inference mode and draws the output of the layer named `layer` (empty:
// the first Conv2D) to `path`. The layer's output must be [C, H, W]; a Dense or Flatten
// layer is refused with a ConfigError that lists the layers with feature maps. It uses
// the caller's executor because building a second one over the same model re-prepares
// the layers' scratch for its batch size.
void write_feature_maps_png(Executor& executor, const Model& model, const Tensor& image,
                            const std::string& layer, const std::string& path);

}  // namespace cnn::viz
