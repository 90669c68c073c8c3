// cnn evaluate: load saved weights and evaluate on the test set.
#include <fmt/format.h>

#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/graph/zoo.h"
#include "engine/io/weights_file.h"
#include "engine/train/trainer.h"

namespace cnn::app {

void add_evaluate_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("evaluate", "Evaluate saved weights on the test set");
  struct Flags {
    CommonFlags common;
    std::string weights;
  };
  auto f = std::make_shared<Flags>();
  f->common.batch_size = 256;
  add_common_flags(*cmd, f->common);
  cmd->add_option("--weights", f->weights, "Weights saved by `cnn train --save`")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->callback([&run, f] {
    run = [f] {
      Model model = build_model(f->common.model);
      auto backend = open_backend(f->common);  // before the data: fail fast
      const DatasetSplits data = load_data(f->common, nullptr);
      Trainer trainer(model, *backend, f->common.seed);
      load_weights(f->weights, model, trainer.parameters());
      const EvalResult r = trainer.evaluate(data.test, f->common.batch_size);
      fmt::print("test: {} images - loss {:.4f} - accuracy {:.4f}\n", r.count, r.loss, r.accuracy);
      return 0;
    };
  });
}

}  // namespace cnn::app
