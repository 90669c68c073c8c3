// cnn evaluate: load a checkpoint (or saved weights) and evaluate on the test set.
#include <fmt/format.h>

#include <memory>
#include <optional>

#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/io/weights_file.h"
#include "engine/train/checkpointing.h"
#include "engine/train/trainer.h"

namespace cnn::app {

void add_evaluate_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd =
      app.add_subcommand("evaluate", "Evaluate a checkpoint or saved weights on the test set");
  struct Flags {
    CommonFlags common;
    std::string weights, checkpoint;
    bool model_given = false;
  };
  auto f = std::make_shared<Flags>();
  f->common.batch_size = 256;
  // The weights come from the file and only the test set is read: no --seed, no --limit.
  add_common_flags(*cmd, f->common, kFlagSeed | kFlagLimit);
  cmd->add_option("--checkpoint", f->checkpoint,
                  "A checkpoint of `cnn train --checkpoint-dir/--out` (it names its model)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--weights", f->weights,
                  "Weights saved by `cnn train --save`, for the model --model")
      ->check(CLI::ExistingFile);
  cmd->callback([&run, f, cmd] {
    f->model_given = cmd->count("--model") > 0;
    run = [f] {
      CNN_CHECK(f->weights.empty() != f->checkpoint.empty(), ConfigError,
                "give one of --checkpoint FILE or --weights FILE{}",
                f->weights.empty() ? "" : ", not both");
      // The checkpoint names its model; --model, when given, must agree.
      std::optional<Checkpoint> ckpt;
      if (!f->checkpoint.empty())
        ckpt = Checkpoint::read(f->checkpoint, /*allow_weights_file=*/true);
      Model model = ckpt && !f->model_given
                        ? ckpt->run().model.build(fmt::format("checkpoint '{}'", f->checkpoint))
                        : build_model(f->common.model);
      auto backend = open_backend(f->common);  // before the data: fail fast
      const Dataset test = load_test_data(f->common);
      Trainer trainer(model, *backend, f->common.seed);
      if (ckpt)
        ckpt->load_weights(model, trainer.parameters());
      else
        load_weights(f->weights, model, trainer.parameters());
      const EvalResult r = trainer.evaluate(test, f->common.batch_size);
      const int64_t batch = f->common.batch_size, steps = (r.count + batch - 1) / batch;
      fmt::print("test: {} images - loss {:.4f} - accuracy {:.4f} ({} step{} of batch {})\n",
                 r.count, r.loss, r.accuracy, steps, steps == 1 ? "" : "s", batch);
      return 0;
    };
  });
}

}  // namespace cnn::app
