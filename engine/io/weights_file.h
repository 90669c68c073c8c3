// Model weights in the safetensors format: an 8-byte little-endian header length, a JSON
// header naming each tensor ("<layer>/<param>") with dtype F32, shape and byte offsets,
// then the raw little-endian float32 data. PyTorch's safetensors loader reads it.
// Non-trainable state (batch-norm running statistics) is saved with the weights.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/graph/model.h"
#include "engine/graph/parameters.h"

namespace cnn {

// Writes every parameter atomically; the header's metadata names the model.
void save_weights(const std::string& path, const Model& model, const Parameters& params);

// Loads a file written by save_weights into params. Refuses, with a cnn::DataError that
// names the file and the problem, anything truncated or corrupt, another model's
// weights, a missing or extra tensor, or a shape that differs.
void load_weights(const std::string& path, const Model& model, Parameters& params);

// A safetensors file, read whole and checked: the header is a JSON object, and every
// tensor has a known dtype, a shape, and data offsets that lie inside the data and hold
// exactly the shape's bytes. Anything else is a DataError naming the file.
class TensorFile {
 public:
  struct Info {
    std::string dtype;  // "F32", "I64", ... (the safetensors names)
    Shape shape;
    uint64_t begin = 0, end = 0;  // byte range within the data
  };

  static TensorFile read(const std::string& path);

  const std::string& path() const { return path_; }
  // The header's "__metadata__" object (null when absent).
  const nlohmann::json& metadata() const { return metadata_; }
  const std::map<std::string, Info>& tensors() const { return tensors_; }
  // Copies an F32 tensor's values (numel floats); throws DataError for another dtype.
  void read_f32(const std::string& name, float* out) const;

 private:
  std::string path_, bytes_;
  size_t data_start_ = 0;
  nlohmann::json metadata_;
  std::map<std::string, Info> tensors_;
};

// Transfer learning: Keras's load_weights(by_name=True, skip_mismatch=...).
struct LoadByNameOptions {
  // Skip (and report) the layers whose tensors differ in shape or dtype from the model's,
  // instead of refusing the file.
  bool skip_mismatch = false;
  // The file names a layer's tensors prefix + "<layer>/<param>".
  std::string prefix;
};

// What a load by name did, layer by layer (model order).
struct LoadReport {
  std::vector<std::string> loaded;      // layers whose every tensor was loaded
  std::vector<std::string> missing;     // layers with parameters that the file lacks
  std::vector<std::string> mismatched;  // "layer: why" for the layers skipped on a mismatch
  std::vector<std::string> unused;      // the file's tensors that name no parameter
  // A few lines for the user: what was loaded, skipped and why.
  std::string str() const;
};

// Loads into the layers of `model` whose names are in the file, all of a layer's tensors
// or none: a layer is loaded when the file has each of its tensors with the same shape
// and dtype F32, and skipped (reported as missing) when the file has none of them. A
// layer that the file has with another shape or dtype, or only in part, refuses the whole
// load with a DataError listing every such layer, unless options.skip_mismatch. Nothing
// is written unless the load succeeds. The file may hold any model's weights (a
// checkpoint of another model sharing some layers).
LoadReport load_weights_by_name(const TensorFile& file, const Model& model, Parameters& params,
                                const LoadByNameOptions& options = {});
LoadReport load_weights_by_name(const std::string& path, const Model& model, Parameters& params,
                                const LoadByNameOptions& options = {});

}  // namespace cnn
