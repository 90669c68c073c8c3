// Training curves as a picture: loss (left) and accuracy (right) per epoch, train in
// blue and validation in orange, with axes, ticks, grid, a legend and, when early
// stopping monitored a metric, a dashed line at the best epoch. Drawn by the engine
// itself (no Python, no plotting library), so `--out DIR` always gets its curves.png.
#pragma once

#include <string>
#include <vector>

#include "engine/io/png.h"
#include "engine/train/trainer.h"

namespace cnn::viz {

// 1200 x 480 RGB. Non-finite values are left out of the lines; epochs without a
// validation figure leave it out too.
Image8 render_curves(const History& history, const std::string& title = "training curves");
void write_curves_png(const History& history, const std::string& path,
                      const std::string& title = "training curves");

// The History in a CSV file with a header row, as Keras's CSVLogger writes it
// ("epoch,accuracy,loss,val_accuracy,val_loss"): columns are found by name, in any
// order; others are ignored; an empty or NA cell means no value that epoch. Epochs
// count from 0 as Keras writes them, or from 1 (kept when the first row says 1). Throws
// DataError naming `name` and the line when a row is malformed or `loss` is missing.
History history_from_csv(const std::string& text, const std::string& name = "history CSV");
History read_history_csv(const std::string& path);

// Axis ticks: the "nice" values (1, 2, 2.5 or 5 times a power of ten) that frame
// [lo, hi] with about `target` intervals. first and last enclose lo and hi.
struct Ticks {
  double first = 0, last = 1, step = 0.25;
  int decimals = 2;  // enough to tell neighbouring ticks apart
  std::vector<double> values() const;
};
Ticks nice_ticks(double lo, double hi, int target = 5);

// The epochs that label the x axis of a run of `last_epoch` epochs: every one up to ten,
// else the multiples of the smallest step of 2, 5, 10, 20, 50, ... that labels at most ten.
std::vector<int> epoch_ticks(int last_epoch);

}  // namespace cnn::viz
