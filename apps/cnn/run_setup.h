// What train and evaluate share: the model, the data, the device.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/backend/backend.h"
#include "engine/io/dataset.h"

namespace cnn::app {

struct CommonFlags {
  std::string model = "mnist-cnn";
  std::string data_dir;                   // --data; empty: the default search order
  std::string dataset = "fashion-mnist";  // which dataset folder to look for
  std::string device = "auto";
  int64_t batch_size = 32;
  uint64_t seed = 42;
  int64_t limit = 0;            // 0: all training images
  std::string impl = "native";  // GPU: native | cudnn | auto
  bool sync_debug = false;
  int64_t workspace_mb = 256;
  bool tf32 = false;           // GPU: TF32 tensor cores in convolutions and GEMMs
  int conv_tiles = 64;         // GPU: the implicit GEMM's block tile, 64 or 128
  bool deterministic = false;  // GPU: the same bits on every run (cuDNN's deterministic paths)
  int threads = 0;             // CPU: threads of the CPU backend; 0: every usable core
};

// The common flags a command may leave out: those it would accept and then ignore (a flag
// that does nothing, silently, is worse than one refused).
enum CommonFlag : unsigned {
  kFlagSeed = 1u << 0,   // --seed
  kFlagLimit = 1u << 1,  // --limit
  kFlagImpl = 1u << 2,   // --impl
};

// Adds the flags of CommonFlags to `cmd`, except those named in `without` (CommonFlag bits).
void add_common_flags(CLI::App& cmd, CommonFlags& f, unsigned without = 0);

// Resolves the data directory and loads both splits, applying --limit to the training
// split. Prints where the data came from.
DatasetSplits load_data(const CommonFlags& f, std::string* resolved_dir);
// The test split alone (evaluate): the training images are not read.
Dataset load_test_data(const CommonFlags& f);

// What the GPU flags (--impl, --sync-debug, --workspace-mb, --tf32, --conv-tiles,
// --deterministic) ask of a backend.
BackendOptions backend_options(const CommonFlags& f);

// The backend for --device (and, on a GPU, --impl, --sync-debug, --workspace-mb), with a
// line saying which device runs.
std::unique_ptr<Backend> open_backend(const CommonFlags& f);

// A captured step's nodes for a report: {kernels, copies, memsets, other, total}.
nlohmann::ordered_json graph_nodes_json(const Backend::GraphNodes& nodes);

// Fails now, not after a long run, when an output file cannot be written there: its
// directory is missing or the path names a directory. An empty path passes.
void check_output_path(const std::string& flag, const std::string& path);

}  // namespace cnn::app
