// Models described in JSON, as a Keras user lists layers. The format:
//
//   {
//     "name": "tiny",                  optional; default: the file's stem, else "model"
//     "input": [1, 28, 28],            the item shape (C, H, W) or (F,); or
//                                      {"shape": [1, 28, 28], "name": "img"}
//     "layers": [                      in order: every layer after its inputs
//       {"type": "Conv2D", "name": "c1", "filters": 8, "kernel_size": 3,
//        "padding": "same", "activation": "relu"},
//       {"type": "Conv2D", "name": "c2", "filters": 8, "kernel_size": 3,
//        "padding": "same", "inputs": ["c1"]},
//       {"type": "Add", "inputs": ["c1", "c2"]},
//       {"type": "Flatten"},
//       {"type": "Dense", "units": 10, "activation": "softmax"}
//     ],
//     "output": "dense"                optional; default: the last layer
//   }
//
// Every layer takes "type" (required), "name" (optional: Keras's automatic names),
// "inputs" (optional: a list of layer names, or one name; "input" names the model input
// unless a layer has that name; default: the layer listed before) and "trainable"
// (optional, default true; false freezes the layer). The other keys are Keras's, with
// Keras's defaults; an int-or-pair argument is 3 or [3, 5] (height, width):
//
//   Conv2D              filters*, kernel_size*, strides 1, padding "valid", dilation_rate 1,
//                       activation "linear", use_bias true
//   MaxPooling2D,
//   AveragePooling2D    pool_size 2, strides null (= pool_size), padding "valid"
//   Dense               units*, activation "linear", use_bias true
//   Flatten, Add        (none)
//   Concatenate         axis -1 (the channels; the only axis supported)
//   Dropout,
//   SpatialDropout2D    rate*
//   BatchNormalization  momentum 0.99, epsilon 0.001
//   Activation          activation*
//
// (* required). padding is "valid", "same", or [[top, bottom], [left, right]];
// activation is "linear" (or null), "relu", "sigmoid", "tanh" or "softmax".
//
// Errors are ConfigErrors that name the origin and the layer, 1-based:
//   model.json: layer 3 ('conv2d_1', Conv2D): unknown key 'filter' (did you mean 'filters'?)
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "engine/graph/model.h"

namespace cnn {

// Builds and finishes the model that `text` describes. `origin` (a path, or any label)
// starts every error message; when it ends in ".json", its stem is the default name.
Model model_from_json_text(const std::string& text, const std::string& origin);
Model model_from_json(const nlohmann::json& description, const std::string& origin);

// Reads and builds a model file (at most 16 MiB). An unreadable file is a DataError.
Model load_model_file(const std::string& path);

// The description of a finished model in the format above, which model_from_json reads
// back into the same model (same layers, names, shapes, parameters and trainable flags).
// Keys at their defaults are left out; names and the input shape are always written.
// The text has one layer per line.
nlohmann::ordered_json model_to_json_value(const Model& model);
std::string model_to_json(const Model& model);

// Whether build_model's argument names a model file rather than a zoo model: it ends in
// ".json" or holds a '/', or it is an existing file and no zoo model has that name.
bool is_model_file(const std::string& name, bool zoo_has_name);

}  // namespace cnn
