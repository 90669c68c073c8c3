// The confusion matrix of a classifier on a labelled set, and its picture: a heatmap
// with the count in every cell and the class names along both axes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/io/png.h"

namespace cnn::viz {

// counts[t * classes + p]: how many items of true class t were predicted as p.
struct ConfusionMatrix {
  int classes = 0;
  std::vector<int64_t> counts;

  int64_t at(int truth, int predicted) const {
    return counts[static_cast<size_t>(truth) * static_cast<size_t>(classes) +
                  static_cast<size_t>(predicted)];
  }
  int64_t total() const;
  int64_t correct() const;  // the diagonal's sum
  int64_t row_total(int truth) const;
  double accuracy() const;  // correct / total; 0 when empty
};

// The class names of a dataset: "fashion-mnist" (T-shirt/top, Trouser, Pullover, Dress,
// Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot) or "mnist" ("0" .. "9"); any other
// name throws ConfigError.
const std::vector<std::string>& class_names(const std::string& dataset);

// Counts (truth, predicted) pairs; every id must lie in [0, classes) (ConfigError).
ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& predicted,
                                 int classes);
// From host tensors: labels [N] (class ids as floats, as a Dataset holds them) and the
// model's scores [N, classes] (probabilities or logits; the largest wins, the first on
// a tie).
ConfusionMatrix confusion_matrix(const Tensor& labels, const Tensor& scores);
// The index of the largest value of each row of a host [N, classes] tensor.
std::vector<int> argmax_rows(const Tensor& scores);

// The heatmap: rows are true classes, columns predicted ones; a cell's colour is its
// share of its row (viridis: none dark purple, all yellow) and its text the count.
// class_names may be empty (then the class ids label the axes), else one per class.
// The title defaults to "confusion matrix: N images, accuracy A".
Image8 render_confusion(const ConfusionMatrix& m, const std::vector<std::string>& class_names,
                        const std::string& title = "");
void write_confusion_png(const ConfusionMatrix& m, const std::vector<std::string>& class_names,
                         const std::string& path, const std::string& title = "");

// Cell (truth, predicted) of the heatmap render_confusion draws for m: its top-left and
// size in pixels (for tests and for anyone annotating the picture).
struct CellRect {
  int x = 0, y = 0, size = 0;
};
CellRect confusion_cell(const ConfusionMatrix& m, const std::vector<std::string>& class_names,
                        int truth, int predicted);

}  // namespace cnn::viz
