// Models by name: the seed models of the Keras lectures this project grew from.
#pragma once

#include <string>
#include <vector>

#include "engine/graph/model.h"

namespace cnn {

struct ZooEntry {
  std::string name;
  std::string description;
  int64_t params;  // what the summary must print, from the seeds
};

const std::vector<ZooEntry>& model_zoo();
// Builds and finishes the named model for 1x28x28 inputs and 10 classes; an unknown
// name throws ConfigError listing the known ones.
Model build_model(const std::string& name);

}  // namespace cnn
