#include "apps/cnn/run_setup.h"

#include <fmt/format.h>

#include <filesystem>

#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/ops/cpu_gemm.h"

namespace cnn::app {

void add_common_flags(CLI::App& cmd, CommonFlags& f, unsigned without) {
  cmd.add_option("--model", f.model, "Model name (see `cnn summary --help`)")
      ->capture_default_str();
  cmd.add_option("--data", f.data_dir,
                 "Dataset directory with the four IDX files (default: $CNN_DATA_DIR, then "
                 "data/<dataset>, then ../shared/data/<dataset>)");
  cmd.add_option("--dataset", f.dataset, "Dataset folder name to search for")
      ->check(CLI::IsMember({"fashion-mnist", "mnist"}))
      ->capture_default_str();
  cmd.add_option("--device", f.device, "cpu, cuda, cuda:N or auto (GPU if one is usable)")
      ->capture_default_str();
  cmd.add_option("--batch-size", f.batch_size, "Batch size")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  if (!(without & kFlagSeed))
    cmd.add_option("--seed", f.seed, "Seed of initialisation, shuffling and dropout")
        ->capture_default_str();
  if (!(without & kFlagLimit))
    cmd.add_option("--limit", f.limit, "Use only the first N training images (0: all)")
        ->check(CLI::NonNegativeNumber);
  if (!(without & kFlagImpl))
    cmd.add_option("--impl", f.impl,
                   "GPU kernels: native (handwritten, cuDNN where unsupported), cudnn, or auto "
                   "(time both per layer shape, keep the faster)")
        ->check(CLI::IsMember({"native", "cudnn", "auto"}))
        ->capture_default_str();
  cmd.add_flag("--sync-debug", f.sync_debug,
               "Synchronize after every GPU launch so a fault names its kernel");
  cmd.add_option("--workspace-mb", f.workspace_mb, "cuDNN workspace budget in MiB")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->capture_default_str();
  cmd.add_flag("--tf32", f.tf32,
               "GPU: allow TF32 tensor cores in convolutions (native and cuDNN) and cuBLAS "
               "(faster; products keep 10 mantissa bits). Default: strict FP32");
  cmd.add_option("--conv-tiles", f.conv_tiles,
                 "GPU: the block tile of the native convolutions' implicit GEMM, 64 "
                 "(64x64x16, 4x4 per thread) or 128 (128x128x8, 8x8 per thread; with --tf32, "
                 "32x64 per warp on tensor cores)")
      ->check(CLI::IsMember({64, 128}))
      ->capture_default_str();
  cmd.add_option("--threads", f.threads,
                 "CPU: threads of the CPU backend (0: every core this process may use, or "
                 "OMP_NUM_THREADS). Any count gives the same bits")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd.add_flag("--deterministic", f.deterministic,
               "GPU: the same bits on every run. The native kernels always give them; this "
               "keeps cuDNN to its deterministic algorithms and makes --impl auto choose "
               "without timing");
}

DatasetSplits load_data(const CommonFlags& f, std::string* resolved_dir) {
  const std::string dir = resolve_data_dir(f.data_dir, f.dataset);
  DatasetSplits d = load_dataset_dir(dir);
  if (f.limit > 0) d.train = take_first(d.train, f.limit);
  fmt::print("data: {} ({} training, {} test images)\n", dir, d.train.size(), d.test.size());
  if (resolved_dir) *resolved_dir = dir;
  return d;
}

Dataset load_test_data(const CommonFlags& f) {
  const std::string dir = resolve_data_dir(f.data_dir, f.dataset);
  Dataset test = load_dataset_dir(dir, DatasetParts::TestOnly).test;
  fmt::print("data: {} ({} test images)\n", dir, test.size());
  return test;
}

BackendOptions backend_options(const CommonFlags& f) {
  BackendOptions o;
  o.policy = parse_impl_policy(f.impl);
  o.sync_debug = f.sync_debug;
  o.workspace_limit = static_cast<size_t>(f.workspace_mb) << 20;
  o.tf32 = f.tf32;
  o.large_tiles = f.conv_tiles == 128;
  o.deterministic = f.deterministic;
  o.cpu_threads = f.threads;
  return o;
}

std::unique_ptr<Backend> open_backend(const CommonFlags& f) {
  const Device d = resolve_device(f.device);
  if (d.is_cuda()) {
    const CudaStatus st = probe_cuda();
    const GpuInfo* gpu = find_gpu(st, d.index);
    fmt::print("device: {} ({}), kernels: {}{}{}{}\n", d.str(), gpu ? gpu->name : "?", f.impl,
               f.tf32 ? ", tf32" : "", f.conv_tiles == 128 ? ", 128x128 conv tiles" : "",
               f.deterministic ? ", deterministic" : "");
    return make_backend(d, backend_options(f));
  }
  auto backend = make_backend(d, backend_options(f));
  const int threads = backend->host_threads();
  fmt::print("device: cpu, {} thread{}, {}", threads, threads == 1 ? "" : "s",
             cpu_gemm_description());
  if (f.device == "auto") fmt::print(" (no usable GPU: {})", probe_cuda().reason);
  fmt::print("\n");
  return backend;
}

nlohmann::ordered_json graph_nodes_json(const Backend::GraphNodes& nodes) {
  return {{"kernels", nodes.kernels},
          {"copies", nodes.copies},
          {"memsets", nodes.sets},
          {"other", nodes.other},
          {"total", nodes.total()}};
}

void check_output_path(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  CNN_CHECK(!fs::is_directory(p, ec), ConfigError, "{} '{}' is a directory, not a file", flag,
            path);
  const fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
  CNN_CHECK(fs::is_directory(parent, ec), ConfigError, "{} '{}': the directory '{}' does not exist",
            flag, path, parent.string());
}

}  // namespace cnn::app
