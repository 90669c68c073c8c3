// Model weights in the safetensors format: an 8-byte little-endian header length, a JSON
// header naming each tensor ("<layer>/<param>") with dtype F32, shape and byte offsets,
// then the raw little-endian float32 data. PyTorch's safetensors loader reads it.
// Non-trainable state (batch-norm running statistics) is saved with the weights.
#pragma once

#include <string>

#include "engine/graph/model.h"
#include "engine/graph/parameters.h"

namespace cnn {

// Writes every parameter atomically; the header's metadata names the model.
void save_weights(const std::string& path, const Model& model, const Parameters& params);

// Loads a file written by save_weights into params. Refuses, with a cnn::DataError that
// names the file and the problem, anything truncated or corrupt, another model's
// weights, a missing or extra tensor, or a shape that differs.
void load_weights(const std::string& path, const Model& model, Parameters& params);

}  // namespace cnn
