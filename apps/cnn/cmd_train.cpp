// cnn train: fit a model as Keras would, evaluate it on the test set, write a report.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/io/weights_file.h"
#include "engine/train/trainer.h"

namespace cnn::app {
namespace {

struct TrainFlags {
  CommonFlags common;
  int epochs = 2;
  std::string optimizer = "adam";
  float lr = -1.0f;
  float momentum = 0.0f;
  bool nesterov = false;
  double validation_split = 0.0;
  int patience = -1;  // < 0: no early stopping
  std::string monitor = "val_loss";
  bool restore_best = true;
  std::string report, save;
};

nlohmann::ordered_json epoch_json(const EpochLog& e) {
  nlohmann::ordered_json j{{"epoch", e.epoch},        {"loss", e.loss},
                           {"accuracy", e.accuracy},  {"val_loss", nullptr},
                           {"val_accuracy", nullptr}, {"seconds", e.seconds}};
  if (e.val_loss) j["val_loss"] = *e.val_loss;
  if (e.val_accuracy) j["val_accuracy"] = *e.val_accuracy;
  return j;
}

void print_epoch(const EpochLog& e, int epochs) {
  std::string line = fmt::format("Epoch {}/{} - {:.1f}s - loss: {:.4f} - accuracy: {:.4f}", e.epoch,
                                 epochs, e.seconds, e.loss, e.accuracy);
  if (e.val_loss)
    line += fmt::format(" - val_loss: {:.4f} - val_accuracy: {:.4f}", *e.val_loss, *e.val_accuracy);
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

// Fails now, not after a long training run, when an output file cannot be written
// there: its directory is missing or the path names a directory.
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

int run_train(const TrainFlags& f) {
  Model model = build_model(f.common.model);
  check_output_path("--save", f.save);
  check_output_path("--report", f.report);
  std::string data_dir;
  auto backend = open_backend(f.common);  // before the data: fail fast
  const DatasetSplits data = load_data(f.common, &data_dir);

  FitOptions opt;
  opt.epochs = f.epochs;
  opt.batch_size = f.common.batch_size;
  opt.validation_split = f.validation_split;
  opt.optimizer.kind = parse_optimizer(f.optimizer);
  opt.optimizer.learning_rate = f.lr;
  opt.optimizer.momentum = f.momentum;
  opt.optimizer.nesterov = f.nesterov;
  opt.early_stopping.enabled = f.patience >= 0;
  opt.early_stopping.patience = std::max(f.patience, 0);
  opt.early_stopping.monitor = f.monitor;
  opt.early_stopping.restore_best_weights = f.restore_best;
  opt.on_epoch_end = print_epoch;

  Trainer trainer(model, *backend, f.common.seed);
  fmt::print("model: {} ({} parameters), optimizer: {}, batch size {}\n", model.name(),
             model.count_params(), opt.optimizer.describe(), opt.batch_size);
  const History history = trainer.fit(data.train, opt);
  if (history.stopped_early)
    fmt::print("early stopping after epoch {} (best epoch {}{})\n", history.epochs.size(),
               history.best_epoch, history.restored_best ? ", its weights restored" : "");
  const EvalResult test = trainer.evaluate(data.test, std::max<int64_t>(opt.batch_size, 256));
  fmt::print("test: loss {:.4f} - accuracy {:.4f}\n", test.loss, test.accuracy);

  if (!f.save.empty()) {
    save_weights(f.save, model, trainer.parameters());
    fmt::print("weights saved to {}\n", f.save);
  }
  if (!f.report.empty()) {
    nlohmann::ordered_json j;
    j["model"] = model.name();
    j["params"] = model.count_params();
    j["device"] = backend->device().str();
    j["implementations"] = {{"conv2d", backend->impl_name("conv2d")},
                            {"dense", backend->impl_name("dense")},
                            {"pool2d", backend->impl_name("pool2d")},
                            {"batchnorm", backend->impl_name("batchnorm")}};
    j["dataset"] = data_dir;
    j["train_images"] = data.train.size();
    j["optimizer"] = opt.optimizer.describe();
    j["batch_size"] = opt.batch_size;
    j["validation_split"] = opt.validation_split;
    j["seed"] = f.common.seed;
    j["epochs_requested"] = opt.epochs;
    j["epochs_run"] = history.epochs.size();
    j["stopped_early"] = history.stopped_early;
    j["best_epoch"] = history.best_epoch;
    j["history"] = nlohmann::ordered_json::array();
    for (const EpochLog& e : history.epochs) j["history"].push_back(epoch_json(e));
    j["test_loss"] = test.loss;
    j["test_accuracy"] = test.accuracy;
    write_file_atomic(f.report, j.dump(2) + "\n");
    fmt::print("report written to {}\n", f.report);
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd =
      app.add_subcommand("train", "Train a model (Keras fit), then evaluate on the test set");
  auto f = std::make_shared<TrainFlags>();
  add_common_flags(*cmd, f->common);
  cmd->add_option("--epochs", f->epochs, "Number of epochs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--optimizer", f->optimizer, "adam, sgd or rmsprop (Keras defaults)")
      ->check(CLI::IsMember({"adam", "sgd", "rmsprop"}))
      ->capture_default_str();
  cmd->add_option("--lr", f->lr, "Learning rate (default: the optimizer's Keras default)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--momentum", f->momentum, "SGD momentum")->check(CLI::Range(0.0, 0.9999));
  cmd->add_flag("--nesterov", f->nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--validation-split", f->validation_split,
                  "Fraction of the training data (the last part) held out for validation")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  cmd->add_option("--patience", f->patience,
                  "Early stopping: epochs without improvement of --monitor before stopping")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--monitor", f->monitor, "Early stopping's metric")
      ->check(CLI::IsMember({"val_loss", "val_accuracy", "loss", "accuracy"}))
      ->capture_default_str();
  cmd->add_flag("!--no-restore-best", f->restore_best,
                "Keep the last weights when early stopping ends the run");
  cmd->add_option("--report", f->report, "Write a JSON report of the run to this file");
  cmd->add_option("--save", f->save, "Save the trained weights (safetensors) to this file");
  cmd->callback([&run, f] { run = [f] { return run_train(*f); }; });
}

}  // namespace cnn::app
