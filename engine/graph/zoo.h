// Models by name: the seed models of the Keras lectures this project grew from, and a zoo
// of classic architectures scaled to 28x28 (LeNet-5, VGG, ResNet, Inception). Each is
// also a model file under models/.
#pragma once

#include <string>
#include <vector>

#include "engine/graph/model.h"

namespace cnn {

struct ZooEntry {
  std::string name;
  std::string description;
  int64_t params;  // the total the summary must print (from the seeds, or by hand)
};

const std::vector<ZooEntry>& model_zoo();
// Builds and finishes the named model for 1x28x28 inputs and 10 classes. A name ending in
// ".json" or holding a '/' (or an existing file that is no zoo name) is a model file,
// read by load_model_file. An unknown name throws ConfigError listing the known ones.
Model build_model(const std::string& name);

}  // namespace cnn
