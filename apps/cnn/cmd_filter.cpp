// cnn filter: apply a classical image filter (Sobel, Laplacian, blur, ...) to a PNG with
// the engine's own convolution, on the CPU or the GPU.
#include <fmt/format.h>

#include "apps/cnn/commands.h"
#include "engine/backend/backend.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/io/png.h"
#include "engine/viz/image_filters.h"

namespace cnn::app {
namespace {

struct FilterFlags {
  std::string kernel;
  std::string input, output;
  std::string device = "auto";
  std::string scale = "auto";
  bool list = false;
};

std::string taps_text(const viz::ImageKernel& k) {
  std::string rows;
  for (int r = 0; r < k.size; ++r) {
    rows += r ? " / " : "";
    for (int c = 0; c < k.size; ++c)
      rows += fmt::format("{}{}", c ? " " : "", k.taps[static_cast<size_t>(r * k.size + c)]);
  }
  return k.divisor == 1 ? rows : fmt::format("({}) / {}", rows, k.divisor);
}

int run_filter(const FilterFlags& f) {
  if (f.list) {
    for (const viz::ImageKernel& k : viz::image_kernels())
      fmt::print("{:<16} {}x{}  {}\n{:<16} {}\n", k.name, k.size, k.size, k.description, "",
                 taps_text(k));
    return 0;
  }
  CNN_CHECK(!f.kernel.empty(), ConfigError, "--kernel is required (see `cnn filter --list`)");
  CNN_CHECK(!f.input.empty() && !f.output.empty(), ConfigError,
            "give an input and an output PNG: cnn filter --kernel NAME IN.png OUT.png");
  const viz::ImageKernel& kernel = viz::find_image_kernel(f.kernel);
  const viz::FilterScale scale =
      viz::resolve_filter_scale(kernel, viz::parse_filter_scale(f.scale));
  const Image8 in = read_png(f.input);
  const Device device = resolve_device(f.device);
  BackendOptions options;
  options.verbose = false;
  auto backend = make_backend(device, options);
  const Image8 out = viz::apply_image_kernel(*backend, kernel, in, scale);
  write_png(f.output, out);
  fmt::print("{}: {} ({}x{}) on {} ({}), {}: wrote {}\n", kernel.name, kernel.description,
             kernel.size, kernel.size, f.input, in.describe(), device.str(), f.output);
  fmt::print("scaling: {}\n", scale == viz::FilterScale::Abs
                                  ? "|response|, the largest in the picture made 255"
                                  : "response clamped to 0..255");
  return 0;
}

}  // namespace

void add_filter_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "filter", "Apply a classical image filter to a PNG with the engine's convolution");
  auto f = std::make_shared<FilterFlags>();
  std::string names;
  for (const viz::ImageKernel& k : viz::image_kernels())
    names += (names.empty() ? "" : ", ") + k.name;
  cmd->add_option("--kernel", f->kernel, names + " (--list shows their taps)");
  cmd->add_option("input", f->input, "Input PNG (gray, gray + alpha, RGB or RGBA)");
  cmd->add_option("output", f->output, "Output PNG, same size and channels");
  cmd->add_option("--device", f->device, "cpu, cuda, cuda:N or auto (GPU if one is usable)")
      ->capture_default_str();
  cmd->add_option("--scale", f->scale,
                  "Back to 0..255: abs (|y|, the largest made 255), clamp, or auto (abs for "
                  "kernels whose taps sum to 0, else clamp)")
      ->check(CLI::IsMember({"auto", "clamp", "abs"}))
      ->capture_default_str();
  cmd->add_flag("--list", f->list, "List the kernels and their taps");
  cmd->callback([&run, f] { run = [f] { return run_filter(*f); }; });
}

}  // namespace cnn::app
