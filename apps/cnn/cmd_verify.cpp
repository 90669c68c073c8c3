// cnn verify: one batch through a model on the GPU (native kernels, cuDNN, or both) and
// on the CPU reference with the same weights and inputs; per layer and pass, the errors.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/backend/cpu_backend.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/train/verify.h"

namespace cnn::app {
namespace {

struct VerifyFlags {
  CommonFlags common;
  std::string impls = "both";
  std::string json;
};

int run_verify(VerifyFlags f) {
  const Device d = resolve_device(f.common.device);
  std::vector<std::string> impls;
  if (d.is_host())
    impls = {"openblas"};  // no GPU: the CPU's fast path against the reference loops
  else if (f.impls == "both")
    impls = {"native", "cudnn"};
  else
    impls = {f.impls};
  f.common.limit = f.common.batch_size;
  const DatasetSplits data = load_data(f.common, nullptr);
  const Dataset batch = take_first(data.train, f.common.batch_size);

  CpuBackend reference(/*reference_only=*/true);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  bool all_ok = true;
  for (const std::string& impl : impls) {
    CommonFlags c = f.common;
    if (d.is_cuda()) c.impl = impl;
    auto candidate = open_backend(c);
    const bool tf32 = d.is_cuda() && f.common.tf32;
    VerifyOptions opt = tf32 ? VerifyOptions::tf32() : VerifyOptions{};
    opt.seed = f.common.seed;
    const auto rows =
        verify_model(f.common.model, reference, *candidate, batch.images, batch.labels, opt);
    fmt::print(
        "{} ({}{}) against the CPU reference, batch {}, tolerance {:.0e} forward, {:.0e} "
        "gradients:\n",
        f.common.model, impl, tf32 ? ", tf32" : "", f.common.batch_size, opt.forward_tolerance,
        opt.gradient_tolerance);
    fmt::print("  {:<20} {:<18} {:<20} {:>10} {:>10} {:>10} {:>9} {:>6}  {}\n", "layer", "type",
               "pass", "max_abs", "max_rel", "rel_l2", "off", "ties", "ok");
    for (const VerifyRow& r : rows) {
      const std::string pass = r.param.empty() ? r.pass : r.pass + ":" + r.param;
      fmt::print("  {:<20} {:<18} {:<20} {:>10.2e} {:>10.2e} {:>10.2e} {:>9} {:>6}  {}\n", r.layer,
                 r.type, pass, r.max_abs, r.max_rel, r.rel_l2, r.off, r.tie_groups,
                 r.ok ? "ok" : "FAIL");
      all_ok = all_ok && r.ok;
      out.push_back({{"model", f.common.model},
                     {"layer", r.layer},
                     {"pass", pass},
                     {"impl", impl},
                     {"precision", tf32 ? "tf32" : "fp32"},
                     {"max_abs", r.max_abs},
                     {"max_rel", r.max_rel},
                     {"rel_l2", r.rel_l2},
                     {"off", r.off},
                     {"tie_groups", r.tie_groups},
                     {"size", r.size},
                     {"tolerance", r.tolerance},
                     {"ok", r.ok}});
    }
    if (std::any_of(rows.begin(), rows.end(), [](const VerifyRow& r) { return r.tie_groups > 0; }))
      fmt::print(
          "  ties: groups of inputs tying for a max-pooling window's maximum, each compared by "
          "its sum\n  (which of them gets the gradient is each implementation's choice)\n");
  }
  if (!f.json.empty()) write_file_atomic(f.json, out.dump(2) + "\n");
  fmt::print("{}\n", all_ok ? "verify: all layers within tolerance"
                            : "verify: FAILED: some layers are outside the tolerance");
  return all_ok ? 0 : 1;
}

}  // namespace

void add_verify_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "verify", "Compare one batch on the GPU (native and cuDNN) with the CPU reference");
  auto f = std::make_shared<VerifyFlags>();
  f->common.batch_size = 8;
  // One batch is read (--batch-size) and --impls names the implementations: no --limit,
  // no --impl.
  add_common_flags(*cmd, f->common, kFlagLimit | kFlagImpl);
  cmd->add_option("--impls", f->impls, "GPU implementations to check: native, cudnn or both")
      ->check(CLI::IsMember({"native", "cudnn", "both"}))
      ->capture_default_str();
  cmd->add_option("--json", f->json, "Write the rows as JSON to this file");
  cmd->callback([&run, f] { run = [f] { return run_verify(*f); }; });
}

}  // namespace cnn::app
