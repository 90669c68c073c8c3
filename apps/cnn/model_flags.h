// Transfer-learning flags of `cnn train`: --freeze, --init-from, --skip-mismatch.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "engine/graph/model.h"
#include "engine/graph/parameters.h"

namespace cnn::app {

struct ModelFlags {
  std::vector<std::string> freeze;  // layer names or globs ("block1_*"), comma-separated
  std::string init_from;            // a weights file or checkpoint, loaded by layer name
  bool skip_mismatch = false;       // skip layers whose shapes differ instead of failing
};

void add_model_flags(CLI::App& cmd, ModelFlags& f);

// Call after building the model and before creating its Trainer (freezing changes the
// parameter layout): freezes the --freeze layers and says which.
void apply_freeze(const ModelFlags& f, Model& model);

// Call once the Trainer has initialised the parameters: loads --init-from by layer name
// and prints what was loaded and skipped. Nothing to do without --init-from.
void apply_init_from(const ModelFlags& f, const Model& model, Parameters& params);

}  // namespace cnn::app
