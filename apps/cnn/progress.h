// How `cnn train` reports as it runs and when it ends: the progress mode (a bar on a
// terminal, lines otherwise, nothing with --quiet), and what the end-of-training outputs
// (train_plots.h) get to see.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/model.h"
#include "engine/io/dataset.h"
#include "engine/train/progress.h"
#include "engine/train/trainer.h"

namespace cnn::app {

// --progress auto|bar|lines and --quiet: auto is a bar when stdout is a terminal.
ProgressMode choose_progress_mode(const std::string& progress, bool quiet, bool stdout_is_terminal);
bool stdout_is_terminal();

// What the end-of-training outputs get (after the test evaluation, before the report is
// written, so they may add to it).
struct TrainEndContext {
  std::string out_dir;  // --out, or "" (a hook writing files should then do nothing)
  Model& model;
  Trainer& trainer;  // the trained weights; trainer.predict() for a confusion matrix
  Backend& backend;
  const History& history;
  const DatasetSplits& data;
  nlohmann::ordered_json& report;  // may add keys (e.g. "plots")
  bool quiet = false;
};

}  // namespace cnn::app
