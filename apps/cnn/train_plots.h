// The pictures `cnn train --out DIR` writes under DIR/plots: training curves, the first
// convolution's filters, and the confusion matrix on the test set.
#pragma once

#include "apps/cnn/progress.h"

namespace cnn::app {

// Does nothing when ctx.out_dir is empty; records the files in ctx.report["plots"].
void write_training_plots(const TrainEndContext& ctx, const std::string& dataset);

}  // namespace cnn::app
