// cnn train: fit a model as Keras would, evaluate it on the test set, write a report.
// Progress as Keras shows it, the history as CSV, checkpoints every epoch (last and best),
// resuming from a checkpoint, learning-rate schedules and data augmentation.
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>

#include "apps/cnn/build_info.h"
#include "apps/cnn/commands.h"
#include "apps/cnn/model_flags.h"
#include "apps/cnn/process_clock.h"
#include "apps/cnn/progress.h"
#include "apps/cnn/run_setup.h"
#include "apps/cnn/train_plots.h"
#include "engine/core/error.h"
#include "engine/graph/model_file.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/io/weights_file.h"
#include "engine/ops/cpu_gemm.h"
#include "engine/perf/layer_ops.h"
#include "engine/train/checkpointing.h"
#include "engine/train/progress.h"
#include "engine/train/target_accuracy.h"
#include "engine/train/trainer.h"

namespace cnn::app {
namespace {

namespace fs = std::filesystem;

struct TrainFlags {
  CommonFlags common;
  ModelFlags transfer;  // --freeze, --init-from, --skip-mismatch
  int epochs = 2;
  std::string optimizer = "adam";
  float lr = -1.0f;
  float momentum = 0.0f;
  bool nesterov = false;
  double validation_split = 0.0;
  int patience = -1;  // < 0: no early stopping
  std::string monitor = "val_loss";
  double min_delta = 0.0;  // early stopping: the least change that counts as improvement
  bool restore_best = true;
  std::string report, save, csv, out, checkpoint_dir, resume;
  double target_accuracy = 0;  // > 0: stop at the first epoch whose test accuracy reaches it
  bool quiet = false;
  std::string progress = "auto";
  // Learning-rate schedule.
  LrScheduleConfig schedule;
  std::string schedule_name = "constant";
  bool no_cycle_momentum = false;
  // Augmentation.
  bool augment_flip = false;
  bool cuda_graphs = true;
  int augment_shift = 0;
};

nlohmann::ordered_json epoch_json(const EpochLog& e) {
  nlohmann::ordered_json j{
      {"epoch", e.epoch},        {"loss", e.loss}, {"accuracy", e.accuracy}, {"val_loss", nullptr},
      {"val_accuracy", nullptr}, {"lr", e.lr},     {"seconds", e.seconds}};
  if (e.val_loss) j["val_loss"] = *e.val_loss;
  if (e.val_accuracy) j["val_accuracy"] = *e.val_accuracy;
  return j;
}

// The CSV beside a report: run.json -> run.csv.
std::string csv_beside(const std::string& report) {
  fs::path p(report);
  p.replace_extension(".csv");
  return p.string();
}

FitOptions options_from_flags(const TrainFlags& f) {
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
  opt.early_stopping.min_delta = f.min_delta;
  opt.early_stopping.restore_best_weights = f.restore_best;
  opt.lr_schedule = f.schedule;
  opt.lr_schedule.kind = parse_lr_schedule(f.schedule_name);
  // One-cycle cycles the momentum of the optimizers that have one (RMSprop has none).
  opt.lr_schedule.cycle_momentum =
      !f.no_cycle_momentum && opt.optimizer.kind != OptimizerKind::Rmsprop;
  opt.augment.flip = f.augment_flip;
  opt.cuda_graphs = f.cuda_graphs;
  opt.augment.max_shift = f.augment_shift;
  // Cosine and one-cycle span the run unless told otherwise; fixed now, so that a resumed
  // run keeps the original length whatever its --epochs.
  const LrScheduleKind k = opt.lr_schedule.kind;
  if ((k == LrScheduleKind::Cosine || k == LrScheduleKind::OneCycle) &&
      opt.lr_schedule.schedule_epochs == 0)
    opt.lr_schedule.schedule_epochs = opt.epochs;
  return opt;
}

// The training flags and where fit_options_to_json keeps their value: a resumed run takes
// these from its checkpoint, and a flag given with another value is refused.
const std::vector<std::pair<std::string, std::string>>& option_flags() {
  static const std::vector<std::pair<std::string, std::string>> flags = {
      {"--batch-size", "/batch_size"},
      {"--validation-split", "/validation_split"},
      {"--optimizer", "/optimizer/kind"},
      {"--lr", "/optimizer/learning_rate"},
      {"--momentum", "/optimizer/momentum"},
      {"--nesterov", "/optimizer/nesterov"},
      {"--patience", "/early_stopping/patience"},
      {"--monitor", "/early_stopping/monitor"},
      {"--min-delta", "/early_stopping/min_delta"},
      {"--no-restore-best", "/early_stopping/restore_best_weights"},
      {"--lr-schedule", "/lr_schedule/kind"},
      {"--lr-step-epochs", "/lr_schedule/step_epochs"},
      {"--lr-factor", "/lr_schedule/factor"},
      {"--lr-schedule-epochs", "/lr_schedule/schedule_epochs"},
      {"--lr-warmup-epochs", "/lr_schedule/warmup_epochs"},
      {"--lr-min", "/lr_schedule/min_lr"},
      {"--lr-pct-start", "/lr_schedule/pct_start"},
      {"--lr-div-factor", "/lr_schedule/div_factor"},
      {"--lr-final-div-factor", "/lr_schedule/final_div_factor"},
      {"--lr-no-cycle-momentum", "/lr_schedule/cycle_momentum"},
      {"--lr-base-momentum", "/lr_schedule/base_momentum"},
      {"--lr-max-momentum", "/lr_schedule/max_momentum"},
      {"--lr-monitor", "/lr_schedule/monitor"},
      {"--lr-patience", "/lr_schedule/patience"},
      {"--lr-min-delta", "/lr_schedule/min_delta"},
      {"--lr-cooldown", "/lr_schedule/cooldown"},
      {"--augment-flip", "/augment/flip"},
      {"--augment-shift", "/augment/max_shift"},
  };
  return flags;
}

// A resumed run continues with its checkpoint's options; flags that say otherwise are
// refused (the run would not be the one that was checkpointed).
void check_resume_flags(const std::set<std::string>& given, const FitOptions& from_flags,
                        const Checkpoint& ckpt) {
  const nlohmann::json mine = fit_options_to_json(from_flags);
  const nlohmann::json& saved = ckpt.run().options;
  for (const auto& [flag, pointer] : option_flags()) {
    if (!given.count(flag)) continue;
    const nlohmann::json::json_pointer ptr(pointer);
    const nlohmann::json want = mine.at(ptr);
    const nlohmann::json have = saved.contains(ptr) ? saved.at(ptr) : nlohmann::json();
    CNN_CHECK(want == have, ConfigError,
              "{} {} differs from the checkpoint's {} ({}): a resumed run continues with the "
              "options it was started with",
              flag, want.dump(), have.dump(), ckpt.path());
  }
}

// Keras's ModelCheckpoint monitors a metric the run has: without validation data, a
// val_ metric falls back to its training counterpart.
std::string checkpoint_monitor(const std::string& monitor, bool has_validation) {
  if (has_validation || monitor.rfind("val_", 0) != 0) return monitor;
  return monitor.substr(4);
}

// Keeps a copy of the history as fit goes, for the report of a run that ends in an error.
class HistoryRecorder : public FitCallback {
 public:
  void on_epoch_end(const EpochEnd& end) override { history = end.history; }
  History history;
};

nlohmann::ordered_json make_report(const TrainFlags& f, const Model& model, Backend& backend,
                                   const std::string& data_dir, const DatasetSplits& data,
                                   const FitOptions& opt, uint64_t seed, const History& history,
                                   int initial_epoch) {
  nlohmann::ordered_json j;
  j["model"] = model.name();
  j["params"] = model.count_params();
  j["build"] = build_info_json();
  j["device"] = backend.device().str();
  if (backend.device().is_host()) {
    j["cpu_threads"] = backend.host_threads();
    j["cpu_gemm"] = cpu_gemm_description();
  }
  j["implementations"] = {{"conv2d", backend.impl_name("conv2d")},
                          {"dense", backend.impl_name("dense")},
                          {"pool2d", backend.impl_name("pool2d")},
                          {"batchnorm", backend.impl_name("batchnorm")}};
  // What the GPU flags asked for (the CPU backend has no use for them).
  j["gpu_options"] = {{"impl", f.common.impl},
                      {"tf32", f.common.tf32},
                      {"conv_tiles", f.common.conv_tiles},
                      {"deterministic", f.common.deterministic},
                      {"sync_debug", f.common.sync_debug},
                      {"workspace_mb", f.common.workspace_mb}};
  // NVIDIA_TF32_OVERRIDE=0 keeps cuBLAS and cuDNN out of TF32 whatever --tf32 says (the
  // native kernels follow the flag alone): a TF32 row's numbers mean something else then.
  if (const char* o = std::getenv("NVIDIA_TF32_OVERRIDE"))
    j["gpu_options"]["nvidia_tf32_override"] = o;
  // What ran: the backend's recorded choices per op and shape (a GPU's dispatcher; on the
  // CPU, max pooling's fast path or the reference), and per layer at the training batch.
  j["implementation_choices"] = backend.implementation_choices();
  j["layer_implementations"] = nlohmann::ordered_json::array();
  for (const perf::LayerImplementation& li :
       perf::layer_implementations(model, backend, opt.batch_size))
    j["layer_implementations"].push_back({{"layer", li.layer},
                                          {"type", li.type},
                                          {"forward", li.forward},
                                          {"backward", li.backward}});
  j["dataset"] = data_dir;
  j["train_images"] = data.train.size();
  j["optimizer"] = opt.optimizer.describe();
  j["lr_schedule"] = lr_schedule_to_json(opt.lr_schedule);
  j["lr_schedule"]["description"] = opt.lr_schedule.describe();
  j["augmentation"] = {{"flip", opt.augment.flip},
                       {"max_shift", opt.augment.max_shift},
                       {"seed", seed},
                       {"description", opt.augment.describe()},
                       {"draws", "cnnk::augment_draw(augment_seed(seed, step).value(), sample)"}};
  j["batch_size"] = opt.batch_size;
  j["validation_split"] = opt.validation_split;
  j["seed"] = seed;
  j["epochs_requested"] = opt.epochs;
  j["initial_epoch"] = initial_epoch;
  if (!f.resume.empty()) j["resumed_from"] = f.resume;
  j["epochs_run"] = history.epochs.size();
  j["stopped_early"] = history.stopped_early;
  j["best_epoch"] = history.best_epoch;
  j["history"] = nlohmann::ordered_json::array();
  for (const EpochLog& e : history.epochs) j["history"].push_back(epoch_json(e));
  return j;
}

int run_train(const TrainFlags& f, const std::set<std::string>& given) {
  // Where the outputs go: --out DIR gives defaults for all of them.
  std::string report = f.report, csv = f.csv, ckpt_dir = f.checkpoint_dir;
  if (!f.out.empty()) {
    std::error_code ec;
    fs::create_directories(f.out, ec);
    CNN_CHECK(fs::is_directory(f.out, ec), ConfigError, "--out '{}': cannot create the directory{}",
              f.out, ec ? ": " + ec.message() : "");
    const fs::path out(f.out);
    if (report.empty()) report = (out / "report.json").string();
    if (csv.empty()) csv = (out / "history.csv").string();
    if (ckpt_dir.empty()) ckpt_dir = (out / "checkpoints").string();
  }
  if (csv.empty() && !report.empty()) csv = csv_beside(report);
  check_output_path("--save", f.save);
  check_output_path("--report", report);
  check_output_path("--csv", csv);
  if (!ckpt_dir.empty()) {
    std::error_code ec;
    CNN_CHECK(!fs::exists(ckpt_dir, ec) || fs::is_directory(ckpt_dir, ec), ConfigError,
              "--checkpoint-dir '{}' is a file, not a directory", ckpt_dir);
  }

  // The run: from the flags, or continued from a checkpoint.
  std::optional<Checkpoint> resumed;
  if (!f.resume.empty()) resumed = Checkpoint::read(f.resume);
  FitOptions opt = options_from_flags(f);
  CommonFlags common = f.common;
  uint64_t seed = f.common.seed;
  int initial_epoch = 0;
  bool from_file = false;
  Model model = [&] {
    if (resumed && !given.count("--model"))
      return resumed->run().model.build(fmt::format("checkpoint '{}'", f.resume));
    bool zoo_has = false;
    for (const ZooEntry& e : model_zoo()) zoo_has = zoo_has || e.name == f.common.model;
    from_file = is_model_file(f.common.model, zoo_has);
    return build_model(f.common.model);
  }();
  if (resumed) {
    // The checkpoint holds the frozen layers and the weights to continue from.
    for (const char* flag : {"--freeze", "--init-from"})
      CNN_CHECK(!given.count(flag), ConfigError,
                "{} does not go with --resume: the checkpoint's own layers and weights continue",
                flag);
  } else {
    apply_freeze(f.transfer, model);  // before the Trainer: it changes the parameter layout
  }
  if (resumed) {
    const RunInfo& run = resumed->run();
    if (!given.count("--model")) from_file = run.model.from_file;
    CNN_CHECK(model.name() == run.model.name, ConfigError,
              "--resume '{}' is a checkpoint of model '{}', not '{}': resuming another model's "
              "checkpoint is refused",
              f.resume, run.model.name, model.name());
    check_resume_flags(given, opt, *resumed);
    CNN_CHECK(!given.count("--seed") || f.common.seed == run.seed, ConfigError,
              "--seed {} differs from the checkpoint's {} ({})", f.common.seed, run.seed, f.resume);
    const int64_t saved_limit = run.data.value("limit", int64_t{0});
    CNN_CHECK(!given.count("--limit") || f.common.limit == saved_limit, ConfigError,
              "--limit {} differs from the checkpoint's {} ({})", f.common.limit, saved_limit,
              f.resume);
    const int total = given.count("--epochs") ? f.epochs : opt.epochs;
    fit_options_from_json(run.options, opt);
    if (given.count("--epochs")) opt.epochs = total;
    seed = run.seed;
    common.limit = saved_limit;
    common.batch_size = opt.batch_size;
    if (!given.count("--dataset") && run.data.contains("dataset"))
      common.dataset = run.data.value("dataset", common.dataset);
    // The data the run was trained on, unless --data says otherwise.
    std::error_code ec;
    const std::string saved_dir = run.data.value("dir", std::string());
    if (!given.count("--data") && !saved_dir.empty() && fs::is_directory(saved_dir, ec))
      common.data_dir = saved_dir;
    initial_epoch = resumed->epoch();
    CNN_CHECK(initial_epoch < opt.epochs, ConfigError,
              "--resume '{}' has already completed {} epochs and --epochs is the total (as Keras's "
              "initial_epoch): give --epochs {} or more to train further",
              f.resume, initial_epoch, initial_epoch + 1);
  }

  std::string data_dir;
  auto backend = open_backend(common);  // before the data: fail fast
  const DatasetSplits data = load_data(common, &data_dir);

  Trainer trainer(model, *backend, seed);
  std::optional<TrainState> state;
  if (resumed)
    state = resumed->state(model, trainer.parameters());
  else
    apply_init_from(f.transfer, model, trainer.parameters());

  const ProgressMode mode = choose_progress_mode(f.progress, f.quiet, stdout_is_terminal());
  const bool has_val = opt.validation_split > 0.0;
  const bool scheduled = opt.lr_schedule.kind != LrScheduleKind::Constant;
  ProgressOptions po;
  po.mode = mode;
  po.show_lr = scheduled;
  ProgressPrinter progress(po);
  opt.callbacks.push_back(&progress);
  opt.progress_reads = mode == ProgressMode::Bar;
  HistoryRecorder recorder;
  opt.callbacks.push_back(&recorder);
  std::optional<CsvLogger> csv_logger;
  if (!csv.empty()) {
    csv_logger.emplace(csv, scheduled);
    opt.callbacks.push_back(&*csv_logger);
  }
  RunInfo run;
  run.model = ModelDescription::of(model, from_file);
  run.seed = seed;
  run.options = fit_options_to_json(opt);
  run.data = {{"dir", data_dir},
              {"dataset", common.dataset},
              {"limit", common.limit},
              {"train_images", data.train.size()}};
  std::optional<Checkpointer> checkpointer;
  if (!ckpt_dir.empty()) {
    checkpointer.emplace(ckpt_dir, model, trainer.parameters(), run,
                         checkpoint_monitor(f.monitor, has_val), resumed ? &*resumed : nullptr);
    opt.callbacks.push_back(&*checkpointer);
  }
  // Time to accuracy: the test set after every epoch, and the run ends at the target. The
  // last callback, so that the epoch's checkpoint is written before the run stops.
  std::optional<TargetAccuracy> target;
  Tensor test_images, test_labels;  // uploaded at the first evaluation, kept for the others
  if (f.target_accuracy > 0) {
    target.emplace(
        f.target_accuracy,
        [&] {
          if (!test_images.defined()) {
            test_images = backend->to_device(data.test.images);
            test_labels = backend->to_device(data.test.labels);
          }
          return trainer.evaluate_on_device(test_images, test_labels, opt.batch_size);
        },
        seconds_since_process_start);
    if (mode != ProgressMode::Quiet)
      target->set_on_evaluation([&](const TargetAccuracy::Point& p) {
        fmt::print("epoch {}: test accuracy {:.4f} (target {}), {:.1f} s since the start\n",
                   p.epoch, p.test_accuracy, f.target_accuracy, p.seconds);
        std::fflush(stdout);
      });
    opt.callbacks.push_back(&*target);
  }

  const bool quiet = mode == ProgressMode::Quiet;
  if (!quiet) {
    fmt::print("model: {} ({} parameters), optimizer: {}, batch size {}\n", model.name(),
               model.count_params(), opt.optimizer.describe(), opt.batch_size);
    if (scheduled) fmt::print("learning-rate schedule: {}\n", opt.lr_schedule.describe());
    if (opt.augment.enabled()) fmt::print("augmentation: {}\n", opt.augment.describe());
    if (resumed)
      fmt::print("resuming {} after epoch {} of {}\n", f.resume, initial_epoch, opt.epochs);
    std::fflush(stdout);
  }
  History history;
  try {
    history = trainer.fit(data.train, opt, state ? &*state : nullptr);
  } catch (const TrainingDiverged& e) {
    std::string msg = e.message();
    if (checkpointer && checkpointer->last_epoch() > 0)
      msg += fmt::format("; the last good checkpoint is {} (epoch {})", checkpointer->last_path(),
                         checkpointer->last_epoch());
    else if (resumed)
      msg += fmt::format("; the checkpoint it resumed from is untouched: {}", f.resume);
    else if (checkpointer)
      msg += "; no epoch completed, so no checkpoint was written";
    if (!report.empty()) {
      nlohmann::ordered_json j = make_report(f, model, *backend, data_dir, data, opt, seed,
                                             recorder.history, initial_epoch);
      j["error"] = msg;
      write_file_atomic(report, j.dump(2) + "\n");
    }
    throw Error(msg);
  }
  if (history.stopped_early && !quiet)
    fmt::print("early stopping after epoch {} (best epoch {}{})\n", history.epochs.size(),
               history.best_epoch, history.restored_best ? ", its weights restored" : "");
  if (target && !quiet) {
    const std::vector<TargetAccuracy::Point>& points = target->points();
    if (target->reached())
      fmt::print("target accuracy {} reached at epoch {}, {:.1f} s after the process started\n",
                 f.target_accuracy, points.back().epoch, points.back().seconds);
    else
      fmt::print("target accuracy {} not reached in {} epochs\n", f.target_accuracy, points.size());
  }
  const EvalResult test = trainer.evaluate(data.test, std::max<int64_t>(opt.batch_size, 256));
  fmt::print("test: loss {:.4f} - accuracy {:.4f}\n", test.loss, test.accuracy);
  if (!quiet) {
    fmt::print("implementations (per layer, batch {}):\n", opt.batch_size);
    for (const perf::LayerImplementation& li :
         perf::layer_implementations(model, *backend, opt.batch_size))
      fmt::print("  {:<24} {:<20} forward {}, backward {}\n", li.layer, li.type, li.forward,
                 li.backward);
  }

  if (!f.save.empty()) {
    save_weights(f.save, model, trainer.parameters());
    if (!quiet) fmt::print("weights saved to {}\n", f.save);
  }
  nlohmann::ordered_json j =
      make_report(f, model, *backend, data_dir, data, opt, seed, history, initial_epoch);
  j["test_loss"] = test.loss;
  j["test_accuracy"] = test.accuracy;
  if (target) j["time_to_target"] = target->report();
  const Trainer::GraphStats graphs = trainer.graph_stats();
  j["cuda_graphs"] = {{"enabled", opt.cuda_graphs},
                      {"captured", graphs.captured},
                      {"replayed_steps", graphs.replayed},
                      {"nodes", graph_nodes_json(graphs.nodes)}};
  // What the memory plan saves: buffers whose lifetimes never meet share memory.
  const Trainer::PlannedMemory memory = trainer.planned_memory();
  j["activation_memory"] = {{"batch", memory.batch},
                            {"planned_bytes", memory.report.planned_bytes},
                            {"unplanned_bytes", memory.report.naive_bytes},
                            {"buffers", memory.report.buffers}};
  if (!csv.empty()) j["history_csv"] = csv;
  if (checkpointer) {
    j["checkpoints"] = {{"dir", ckpt_dir},
                        {"last", checkpointer->last_path()},
                        {"best", checkpointer->best_epoch() > 0 ? checkpointer->best_path() : ""},
                        {"monitor", checkpointer->monitor()},
                        {"best_epoch", checkpointer->best_epoch()}};
    if (!quiet)
      fmt::print("checkpoints: {} (best: epoch {} by {})\n", ckpt_dir, checkpointer->best_epoch(),
                 checkpointer->monitor());
  }
  write_training_plots(TrainEndContext{f.out, model, trainer, *backend, history, data, j, quiet},
                       f.common.dataset);
  if (!report.empty()) {
    write_file_atomic(report, j.dump(2) + "\n");
    if (!quiet) fmt::print("report written to {}\n", report);
  }
  if (!csv.empty() && !quiet) fmt::print("history written to {}\n", csv);
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd =
      app.add_subcommand("train", "Train a model (Keras fit), then evaluate on the test set");
  auto f = std::make_shared<TrainFlags>();
  add_common_flags(*cmd, f->common);
  add_model_flags(*cmd, f->transfer);
  cmd->add_option("--epochs", f->epochs,
                  "Number of epochs in all (with --resume: the total, counting those done)")
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
  cmd->add_option("--monitor", f->monitor,
                  "Early stopping's metric, and the one best.safetensors is chosen by")
      ->check(CLI::IsMember({"val_loss", "val_accuracy", "loss", "accuracy"}))
      ->capture_default_str();
  cmd->add_option("--min-delta", f->min_delta,
                  "Early stopping: the least change of --monitor that counts as an improvement "
                  "(Keras's min_delta)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("!--no-restore-best", f->restore_best,
                "Keep the last weights when early stopping ends the run");

  // Outputs.
  cmd->add_option("--target-accuracy", f->target_accuracy,
                  "Evaluate the test set after every epoch and stop at the first epoch whose "
                  "accuracy reaches this (0 < A <= 1); the report's time_to_target says when, "
                  "in seconds from the process start")
      ->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--report", f->report, "Write a JSON report of the run to this file");
  cmd->add_option("--csv", f->csv,
                  "Write the history as CSV (Keras's CSVLogger) to this file (default: beside "
                  "the report, with the extension .csv)");
  cmd->add_option("--save", f->save, "Save the trained weights (safetensors) to this file");
  cmd->add_option("--out", f->out,
                  "Write everything under this directory: report.json, history.csv, "
                  "checkpoints/last.safetensors and best.safetensors");
  cmd->add_option("--checkpoint-dir", f->checkpoint_dir,
                  "Save last.safetensors every epoch and best.safetensors when --monitor improves");
  cmd->add_option("--resume", f->resume,
                  "Continue the run of this checkpoint (its model and options) up to --epochs")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--quiet,-q", f->quiet, "No progress output");
  cmd->add_option("--progress", f->progress,
                  "auto (a bar on a terminal, else one line per epoch), bar or lines")
      ->check(CLI::IsMember({"auto", "bar", "lines"}))
      ->capture_default_str();

  // Learning-rate schedules.
  LrScheduleConfig& s = f->schedule;
  cmd->add_option("--lr-schedule", f->schedule_name,
                  "constant, step (decay every --lr-step-epochs by --lr-factor), cosine (with "
                  "--lr-warmup-epochs, down to --lr-min), onecycle, or plateau (Keras's "
                  "ReduceLROnPlateau)")
      ->check(CLI::IsMember({"constant", "step", "cosine", "onecycle", "plateau"}))
      ->capture_default_str();
  cmd->add_option("--lr-step-epochs", s.step_epochs, "step: epochs between decays")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--lr-factor", s.factor, "step: the decay; plateau: the reduction")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  cmd->add_option("--lr-schedule-epochs", s.schedule_epochs,
                  "cosine, onecycle: the schedule's length in epochs (default: --epochs)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--lr-warmup-epochs", s.warmup_epochs,
                  "cosine: linear warmup from 0 over this many epochs")
      ->check(CLI::Range(0.0, 100000.0))
      ->capture_default_str();
  cmd->add_option("--lr-min", s.min_lr, "cosine: the final rate; plateau: the floor (min_lr)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  cmd->add_option("--lr-pct-start", s.pct_start, "onecycle: the share of steps rising to --lr")
      ->check(CLI::Range(1e-6, 0.999999))
      ->capture_default_str();
  cmd->add_option("--lr-div-factor", s.div_factor, "onecycle: start at --lr / this")
      ->check(CLI::Range(1.0, 1e12))
      ->capture_default_str();
  cmd->add_option("--lr-final-div-factor", s.final_div_factor,
                  "onecycle: end at the start rate / this")
      ->check(CLI::Range(1.0, 1e12))
      ->capture_default_str();
  cmd->add_flag("--lr-no-cycle-momentum", f->no_cycle_momentum,
                "onecycle: keep the momentum fixed (by default SGD's momentum or Adam's beta1 "
                "falls from --lr-max-momentum to --lr-base-momentum as the rate rises, and "
                "back; rmsprop has none to cycle)");
  cmd->add_option("--lr-base-momentum", s.base_momentum, "onecycle: the momentum at the peak rate")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  cmd->add_option("--lr-max-momentum", s.max_momentum,
                  "onecycle: the momentum at the start and the end")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  cmd->add_option("--lr-monitor", s.monitor, "plateau: the metric watched")
      ->check(CLI::IsMember({"val_loss", "val_accuracy", "loss", "accuracy"}))
      ->capture_default_str();
  cmd->add_option("--lr-patience", s.patience, "plateau: epochs without improvement")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lr-min-delta", s.min_delta, "plateau: the least change that improves")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lr-cooldown", s.cooldown, "plateau: epochs to wait after a reduction")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  cmd->add_flag("!--no-cuda-graph", f->cuda_graphs,
                "On a GPU, run every training step as launched instead of replaying a CUDA "
                "graph of it (graphs are on by default; the NVTX ranges of each layer then "
                "appear for every step, not only at capture)");

  // Augmentation.
  cmd->add_flag("--augment-flip", f->augment_flip, "Flip training images left-right at random");
  cmd->add_option("--augment-shift", f->augment_shift,
                  "Shift training images at random by up to N pixels (zero fill)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();

  cmd->callback([&run, f, cmd] {
    std::set<std::string> given;
    for (const CLI::Option* o : cmd->get_options())
      if (o->count() > 0)
        for (const std::string& name : o->get_lnames()) given.insert("--" + name);
    run = [f, given] { return run_train(*f, given); };
  });
}

}  // namespace cnn::app
