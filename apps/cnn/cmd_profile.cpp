// cnn profile: training steps for Nsight, and the engine's own per-layer table. Warm-up
// steps run first; the measured steps run between cudaProfilerStart and cudaProfilerStop,
// so `nsys profile --capture-range=cudaProfilerApi` and `ncu --profile-from-start off`
// capture exactly those; then the same steps again with every layer pass timed, for the
// table: time, share of the step, TFLOP/s, GB/s, and which implementation ran.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "apps/cnn/build_info.h"
#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/ops/cpu_gemm.h"
#include "engine/perf/step_profile.h"
#include "engine/perf/train_step.h"

namespace cnn::app {
namespace {

using json = nlohmann::ordered_json;

struct ProfileFlags {
  CommonFlags common;
  perf::ProfileOptions options;
  std::string optimizer = "adam";
  std::string json;
};

json pass_json(const perf::LayerPassTime& p, double step_ms) {
  json j;
  j["layer"] = p.layer;
  j["type"] = p.type;
  j["pass"] = perf::layer_pass_name(p.pass);
  j["ms"] = p.ms;
  j["share"] = step_ms > 0 ? p.ms / step_ms : 0.0;
  j["gflop"] = p.cost ? json(p.cost->flops * 1e-9) : json(nullptr);
  j["gbytes"] = p.cost ? json(p.cost->bytes * 1e-9) : json(nullptr);
  j["tflops"] = p.cost ? json(perf::tflops_per_second(*p.cost, p.ms)) : json(nullptr);
  j["gbps"] = p.cost ? json(perf::gigabytes_per_second(*p.cost, p.ms)) : json(nullptr);
  j["impl"] = p.impl.empty() ? json(nullptr) : json(p.impl);
  return j;
}

void print_table(const perf::StepProfile& prof) {
  const double step = prof.observed_step_ms;
  fmt::print("{:<22} {:<20} {:<9} {:>9} {:>7} {:>9} {:>8} {:>8}  {}\n", "layer", "type", "pass",
             "ms", "share", "GFLOP", "TFLOP/s", "GB/s", "impl");
  for (const perf::LayerPassTime& p : prof.passes) {
    const std::string gflop = p.cost ? fmt::format("{:.4f}", p.cost->flops * 1e-9) : "-";
    const std::string tflops =
        p.cost ? fmt::format("{:.4f}", perf::tflops_per_second(*p.cost, p.ms)) : "-";
    const std::string gbps =
        p.cost ? fmt::format("{:.2f}", perf::gigabytes_per_second(*p.cost, p.ms)) : "-";
    fmt::print("{:<22} {:<20} {:<9} {:>9.4f} {:>6.1f}% {:>9} {:>8} {:>8}  {}\n", p.layer, p.type,
               perf::layer_pass_name(p.pass), p.ms, step > 0 ? 100.0 * p.ms / step : 0.0, gflop,
               tflops, gbps, p.impl.empty() ? "-" : p.impl);
  }
  fmt::print("{:<53} {:>9.4f} {:>6.1f}%\n", "(the rest: gather, loss, optimizer update)",
             prof.other_ms(), step > 0 ? 100.0 * prof.other_ms() / step : 0.0);
}

int run_profile(const ProfileFlags& f) {
  Model model = build_model(f.common.model);
  auto backend = open_backend(f.common);
  const DatasetSplits data = load_data(f.common, nullptr);
  OptimizerConfig opt;
  opt.kind = parse_optimizer(f.optimizer);
  perf::TrainStep step(model, *backend, data.train, f.common.batch_size, opt, f.common.seed);
  fmt::print(
      "profile: {}, batch {}, {}: {} warm-up steps, then {} steps between profiler start and "
      "stop (nsys --capture-range=cudaProfilerApi, ncu --profile-from-start off), then {} "
      "observed steps for the table\n",
      model.name(), step.batch(), opt.describe(),
      f.options.warmup_steps(!backend->device().is_host()), f.options.steps, f.options.steps);
  std::fflush(stdout);
  const perf::StepProfile prof = perf::profile_steps(step, model, f.options);
  fmt::print("step: {:.4f} ms profiled ({}), {:.4f} ms observed per layer (launched)\n",
             prof.step_ms,
             prof.step_replayed ? "replayed from a CUDA graph, as training runs it" : "launched",
             prof.observed_step_ms);
  const Backend::GraphNodes nodes = step.graph_nodes();
  if (prof.step_replayed)
    fmt::print("step graph: {} nodes ({} kernels, {} copies, {} memsets, {} other)\n",
               nodes.total(), nodes.kernels, nodes.copies, nodes.sets, nodes.other);
  print_table(prof);
  if (!f.json.empty()) {
    json out;
    out["model"] = model.name();
    out["device"] = backend->device().str();
    if (backend->device().is_host()) {
      out["cpu_threads"] = backend->host_threads();
      out["cpu_gemm"] = cpu_gemm_description();
    }
    out["build"] = build_info_json();
    out["batch_size"] = prof.batch;
    out["optimizer"] = opt.describe();
    out["seed"] = f.common.seed;
    out["warmup"] = prof.warmup;
    out["steps"] = prof.steps;
    out["step_ms"] = prof.step_ms;
    out["step_replayed_from_graph"] = prof.step_replayed;
    if (prof.step_replayed) out["step_graph_nodes"] = graph_nodes_json(nodes);
    out["observed_step_ms"] = prof.observed_step_ms;
    out["other_ms"] = prof.other_ms();
    out["implementation_choices"] = backend->implementation_choices();
    out["layers"] = json::array();
    for (const perf::LayerPassTime& p : prof.passes)
      out["layers"].push_back(pass_json(p, prof.observed_step_ms));
    write_file_atomic(f.json, out.dump(2) + "\n");
    fmt::print("profile written to {}\n", f.json);
  }
  return 0;
}

}  // namespace

void add_profile_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "profile",
      "Run training steps for Nsight (bracketed by cudaProfilerStart/Stop) and print the "
      "per-layer time, share of the step, TFLOP/s, GB/s and implementation");
  auto f = std::make_shared<ProfileFlags>();
  add_common_flags(*cmd, f->common);
  cmd->add_option("--steps", f->options.steps, "Measured steps")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--warmup", f->options.warmup, "Warm-up steps before the measured ones")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--optimizer", f->optimizer, "adam, sgd or rmsprop (Keras defaults)")
      ->check(CLI::IsMember({"adam", "sgd", "rmsprop"}))
      ->capture_default_str();
  cmd->add_flag("!--no-cuda-graph", f->options.cuda_graphs,
                "Launch the profiled steps op by op instead of replaying a captured graph");
  cmd->add_option("--json", f->json, "Write the per-layer table as JSON to this file");
  cmd->callback([&run, f] { run = [f] { return run_profile(*f); }; });
}

}  // namespace cnn::app
