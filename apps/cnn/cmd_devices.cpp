#include <fmt/format.h>

#include "apps/cnn/commands.h"
#include "engine/backend/backend.h"
#include "engine/core/device.h"
#include "engine/ops/cpu_gemm.h"

namespace cnn::app {

void add_devices_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("devices", "Report the GPUs the CUDA runtime sees, and the CPU");
  cmd->callback([&run] {
    run = [] {
      fmt::print("cpu GEMM: {}\n", cpu_gemm_description());
      const CudaStatus st = probe_cuda();
      fmt::print("built with CUDA: {}\n", built_with_cuda() ? "yes" : "no");
      if (const std::string libs = gpu_library_versions(); !libs.empty())
        fmt::print("loaded: {}\n", libs);
      if (!st.available) {
        fmt::print("no usable GPU: {}\n--device auto runs on the CPU.\n", st.reason);
        return 0;
      }
      fmt::print("driver {}.{}, runtime {}.{}\n", st.driver_version / 1000,
                 (st.driver_version % 1000) / 10, st.runtime_version / 1000,
                 (st.runtime_version % 1000) / 10);
      for (const GpuInfo& g : st.gpus)
        fmt::print("cuda:{}  {}  sm_{}{}  {:.1f} GiB{}\n", g.index, g.name, g.sm_major, g.sm_minor,
                   static_cast<double>(g.total_memory) / (1024.0 * 1024.0 * 1024.0),
                   g.unusable.empty() ? "" : "  (not usable: " + g.unusable + ")");
      return 0;
    };
  });
}

}  // namespace cnn::app
