// The layers a model is built from, with Keras's names and defaults.
#pragma once

#include <string>

#include "engine/graph/layer.h"
#include "engine/ops/activation/activation.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/pool2d/pool2d.h"

namespace cnn::layers {

// Conv2D(filters, kernel, strides=1, padding="valid", activation=linear, use_bias=true).
LayerPtr conv2d(const Conv2dParams& p, Activation activation = Activation::Linear);
// Shorthand for the common square case.
LayerPtr conv2d(int filters, int kernel, const std::string& padding = "valid",
                Activation activation = Activation::Linear, int stride = 1);
LayerPtr max_pool2d(int pool, const std::string& padding = "valid", int stride = 0);
LayerPtr avg_pool2d(int pool, const std::string& padding = "valid", int stride = 0);
LayerPtr pool2d(const Pool2dParams& p);
LayerPtr dense(int units, Activation activation = Activation::Linear, bool use_bias = true);
LayerPtr flatten();
LayerPtr activation(Activation a);
LayerPtr dropout(float rate);
LayerPtr spatial_dropout2d(float rate);
LayerPtr batch_norm(float momentum = 0.99f, float epsilon = 1e-3f);
LayerPtr add();
LayerPtr concatenate();

// "valid" / "same"; anything else throws ConfigError.
Padding parse_padding(const std::string& name);

}  // namespace cnn::layers
