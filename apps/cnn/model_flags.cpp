#include "apps/cnn/model_flags.h"

#include <fmt/format.h>

#include "engine/io/weights_file.h"

namespace cnn::app {

void add_model_flags(CLI::App& cmd, ModelFlags& f) {
  cmd.add_option("--freeze", f.freeze,
                 "Freeze these layers (names or globs such as 'conv2d*', comma-separated): "
                 "their weights do not train, as Keras's trainable=False")
      ->delimiter(',');
  cmd.add_option("--init-from", f.init_from,
                 "Initialise every layer that this weights file or checkpoint names (same layer "
                 "name and shapes) from it; the other layers keep their initialisation")
      ->check(CLI::ExistingFile);
  cmd.add_flag("--skip-mismatch", f.skip_mismatch,
               "With --init-from: skip layers whose shapes differ instead of failing");
}

void apply_freeze(const ModelFlags& f, Model& model) {
  if (f.freeze.empty()) return;
  const std::vector<std::string> frozen = freeze_layers(model, f.freeze);
  std::string names;
  for (const std::string& n : frozen) names += (names.empty() ? "" : ", ") + n;
  fmt::print("frozen: {} ({} non-trainable parameters)\n", names, model.count_params(false));
}

void apply_init_from(const ModelFlags& f, const Model& model, Parameters& params) {
  if (f.init_from.empty()) return;
  LoadByNameOptions options;
  options.skip_mismatch = f.skip_mismatch;
  const LoadReport report = load_weights_by_name(f.init_from, model, params, options);
  fmt::print("{}: {}", f.init_from, report.str());
}

}  // namespace cnn::app
