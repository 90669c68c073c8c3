// cnn bench: every Conv2D, pooling and BatchNormalization layer of a model timed alone,
// pass by pass, with the handwritten kernels and with cuDNN (on the CPU: the CPU
// backend, as "native"), against the op's FLOPs and minimum bytes; then the time of a
// whole training epoch. A table on stdout, and JSON rows for the bench/ scripts.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apps/cnn/build_info.h"
#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/ops/cpu_gemm.h"
#include "engine/perf/layer_bench.h"
#include "engine/perf/layer_ops.h"
#include "engine/train/trainer.h"

namespace cnn::app {
namespace {

using json = nlohmann::ordered_json;

struct BenchFlags {
  CommonFlags common;
  std::vector<int64_t> batch_sizes{32, 256};
  int warmup = 3, repeats = 20;
  int epochs = 1;  // 0: no epoch timing
  std::string json;
};

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::string cell(const std::optional<double>& v, int precision) {
  return v ? fmt::format("{:.{}f}", *v, precision) : "-";
}

// One row: a pass of a layer at a batch size, with both implementations' times.
json bench_row(const std::string& model, const perf::LayerOp& op, const perf::TimedPass& native,
               const perf::TimedPass* cudnn) {
  const perf::OpCost c = op.cost(native.pass);
  std::optional<double> cudnn_ms;
  if (cudnn) cudnn_ms = cudnn->median_ms;
  json r;
  r["model"] = model;
  r["layer"] = op.layer;
  r["type"] = op.type;
  r["pass"] = perf::pass_name(native.pass);
  r["batch_size"] = op.batch();
  r["geometry"] = op.describe();
  r["native_ms"] = native.median_ms;
  r["cudnn_ms"] = optional_number(cudnn_ms);
  r["native_impl"] = native.impl;
  r["cudnn_impl"] = cudnn ? json(cudnn->impl) : json(nullptr);
  r["gflop"] = c.flops * 1e-9;
  r["gbytes"] = c.bytes * 1e-9;
  r["native_tflops"] = perf::tflops_per_second(c, native.median_ms);
  r["native_gbps"] = perf::gigabytes_per_second(c, native.median_ms);
  r["cudnn_tflops"] = cudnn_ms ? json(perf::tflops_per_second(c, *cudnn_ms)) : json(nullptr);
  r["cudnn_gbps"] = cudnn_ms ? json(perf::gigabytes_per_second(c, *cudnn_ms)) : json(nullptr);
  r["native_over_cudnn"] =
      cudnn_ms && *cudnn_ms > 0 ? json(native.median_ms / *cudnn_ms) : json(nullptr);
  r["native_repeats_ms"] = native.ms;
  r["cudnn_repeats_ms"] = cudnn ? json(cudnn->ms) : json(nullptr);
  return r;
}

void print_header() {
  fmt::print("{:<22} {:<16} {:>6} {:>10} {:>10} {:>7} {:>9} {:>9} {:>8} {:>8}  {}\n", "layer",
             "pass", "batch", "native ms", "cudnn ms", "n/c", "GFLOP", "MB", "TFLOP/s", "GB/s",
             "native impl");
}

void print_row(const json& r) {
  const auto opt = [&](const char* key) {
    return r[key].is_null() ? std::optional<double>() : r[key].get<double>();
  };
  fmt::print("{:<22} {:<16} {:>6} {:>10.4f} {:>10} {:>7} {:>9.4f} {:>9.3f} {:>8.4f} {:>8.2f}  {}\n",
             r["layer"].get<std::string>(), r["pass"].get<std::string>(),
             r["batch_size"].get<int64_t>(), r["native_ms"].get<double>(), cell(opt("cudnn_ms"), 4),
             cell(opt("native_over_cudnn"), 2), r["gflop"].get<double>(),
             r["gbytes"].get<double>() * 1e3, r["native_tflops"].get<double>(),
             r["native_gbps"].get<double>(), r["native_impl"].get<std::string>());
}

// Trains `epochs` epochs of the model on the training data (its first --limit samples)
// through the Trainer, as `cnn train` does; the last epoch's time is the warm figure.
json time_epochs(const BenchFlags& f, Backend& backend) {
  const DatasetSplits data = load_data(f.common, nullptr);
  Model model = build_model(f.common.model);
  Trainer trainer(model, backend, f.common.seed);
  FitOptions opt;
  opt.epochs = f.epochs;
  opt.batch_size = f.common.batch_size;
  const History h = trainer.fit(data.train, opt);
  json seconds = json::array();
  for (const EpochLog& e : h.epochs) seconds.push_back(e.seconds);
  const double last = h.epochs.back().seconds;
  const int64_t samples = data.train.size();
  json j;
  j["samples"] = samples;
  j["batch_size"] = opt.batch_size;
  j["impl"] = backend.impl_name("conv2d");  // what ran: the backend's, not the flag's
  j["epochs"] = f.epochs;
  j["epoch_seconds"] = seconds;
  j["seconds_per_epoch"] = last;
  j["samples_per_second"] = last > 0 ? static_cast<double>(samples) / last : 0.0;
  j["final_loss"] = h.epochs.back().loss;
  fmt::print("epoch: {} samples, batch {}: {:.3f} s per epoch, {:.0f} samples/s{}\n", samples,
             opt.batch_size, last, j["samples_per_second"].get<double>(),
             f.epochs == 1 ? " (one epoch: includes first-use costs)" : " (the last epoch)");
  return j;
}

int run_bench(const BenchFlags& f) {
  const Device d = resolve_device(f.common.device);
  const Model model = build_model(f.common.model);
  // On a GPU one backend per implementation; on the CPU its backend is the "native" one.
  CommonFlags c = f.common;
  std::unique_ptr<Backend> native, cudnn;
  if (d.is_cuda()) {
    c.impl = "native";
    native = open_backend(c);
    c.impl = "cudnn";
    cudnn = open_backend(c);
  } else {
    native = open_backend(c);
  }
  const int cpu_threads = native->host_threads();
  perf::BenchTiming timing;
  timing.warmup = f.warmup;
  timing.repeats = f.repeats;
  timing.seed = f.common.seed;
  fmt::print("bench: {} - {} warm-up runs, median of {} repeats\n", model.name(), f.warmup,
             f.repeats);
  print_header();
  json rows = json::array();
  for (const int64_t n : f.batch_sizes) {
    for (const perf::LayerOp& op : perf::conv_pool_batchnorm_ops(model, n)) {
      const std::vector<perf::TimedPass> a = perf::time_layer_op(*native, op, timing);
      std::vector<perf::TimedPass> b;
      if (cudnn) b = perf::time_layer_op(*cudnn, op, timing);
      for (size_t i = 0; i < a.size(); ++i) {
        rows.push_back(bench_row(model.name(), op, a[i], cudnn ? &b[i] : nullptr));
        print_row(rows.back());
      }
    }
  }

  json epoch = nullptr;
  if (f.epochs > 0) {
    // The epoch runs on one backend; the others go first, and their memory caches with
    // them, so that the epoch has the GPU's memory to itself.
    std::unique_ptr<Backend> be;
    if (d.is_cuda() && f.common.impl == "cudnn")
      be = std::move(cudnn);
    else if (!d.is_cuda() || f.common.impl == "native")
      be = std::move(native);
    native.reset();
    cudnn.reset();
    if (!be) be = open_backend(f.common);  // auto: a backend of its own
    epoch = time_epochs(f, *be);
  }
  if (!f.json.empty()) {
    json out;
    out["model"] = model.name();
    out["device"] = d.str();
    if (d.is_host()) {
      out["cpu_threads"] = cpu_threads;
      out["cpu_gemm"] = cpu_gemm_description();
    }
    out["build"] = build_info_json();
    out["seed"] = f.common.seed;  // the layers' inputs and weights, and the epoch's run
    out["warmup"] = f.warmup;
    out["repeats"] = f.repeats;
    out["rows"] = rows;
    out["epoch"] = epoch;
    write_file_atomic(f.json, out.dump(2) + "\n");
    fmt::print("bench written to {}\n", f.json);
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Time every Conv2D, pooling and BatchNormalization layer of a model per pass (native "
      "kernels and cuDNN on a GPU), then one training epoch");
  auto f = std::make_shared<BenchFlags>();
  // --epoch-samples says what --limit would: which images the timed epochs read.
  add_common_flags(*cmd, f->common, kFlagLimit);
  cmd->add_option("--batch-sizes", f->batch_sizes, "Batch sizes of the layer timings")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--warmup", f->warmup, "Untimed runs of each pass first")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--repeats", f->repeats, "Timed runs of each pass (the median is reported)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--epochs", f->epochs,
                  "Training epochs to time after the layers (at --batch-size; 0: none)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--epoch-samples", f->common.limit,
                  "Time the epochs on the first N training images (as train's --limit; 0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--json", f->json, "Write the rows and the epoch time as JSON to this file");
  cmd->callback([&run, f] { run = [f] { return run_bench(*f); }; });
}

}  // namespace cnn::app
