// `cnn train`'s flags, each shown to do what it says from the command line: transfer
// (--init-from, --freeze, --skip-mismatch), the optimizer's (--momentum, --nesterov),
// early stopping's --min-delta and --no-restore-best, where the history and checkpoints go (--csv,
// --checkpoint-dir), the learning-rate schedules' parameters, and --dataset. Each test
// compares a run with the flag against one without it, so that a flag ignored or inverted
// fails. The engine's own tests prove the mechanisms; these prove the wiring.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"
#include "apps/cli_train_fixture.h"
#include "engine/io/checkpoint.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using clitest::CliResult;
using clitest::contains;
using clitest::expect_error;
using clitest::expect_success;
using clitest::read_csv;
using clitest::read_json;
using clitest::read_text;
using clitest::write_split;
using clitest::write_text;
using nlohmann::json;

class CliTrainFlags : public clitest::CliTrain {
 protected:
  // The values of one tensor of a weights file.
  std::vector<float> tensor(const std::string& file, const std::string& name) const {
    const CheckpointFile f = read_checkpoint_file(in_work(file).string());
    const CheckpointFile::Tensor* t = f.find(name);
    if (!t) {
      ADD_FAILURE() << file << " has no tensor " << name;
      return {};
    }
    return t->values;
  }
  // The report of a quiet training run with `flags` and then `extra`, written as TAG.json.
  json report_of(const std::string& tag, std::vector<std::string> flags,
                 const std::vector<std::string>& extra = {}) const {
    flags.insert(flags.end(), extra.begin(), extra.end());
    flags.insert(flags.end(), {"-q", "--report", tag + ".json"});
    expect_success(train(flags));
    return read_json(in_work(tag + ".json"));
  }
  // The history's values of one key, epoch by epoch.
  static std::vector<double> history_of(const json& report, const char* key) {
    std::vector<double> v;
    for (const json& e : report["history"]) v.push_back(e[key].get<double>());
    return v;
  }
};

// mnist-cnn with a wider hidden Dense: the convolutions match mnist-cnn's, both Dense
// layers do not.
constexpr const char* kWideDense = R"({"name": "mnist-cnn-wide", "input": [1, 28, 28],
 "layers": [
   {"type": "Conv2D", "name": "conv2d", "filters": 16, "kernel_size": 3, "activation": "relu"},
   {"type": "MaxPooling2D", "name": "max_pooling2d"},
   {"type": "Conv2D", "name": "conv2d_1", "filters": 32, "kernel_size": 3, "activation": "relu"},
   {"type": "MaxPooling2D", "name": "max_pooling2d_1"},
   {"type": "Flatten", "name": "flatten"},
   {"type": "Dense", "name": "dense", "units": 48, "activation": "relu"},
   {"type": "Dense", "name": "dense_1", "units": 10, "activation": "softmax"}]})";

TEST_F(CliTrainFlags, InitFromLoadsByNameAndFreezeKeepsThoseLayersAsLoaded) {
  expect_success(train({"--epochs", "1", "--save", "a.st", "-q"}));
  // Loaded and frozen: the convolutions end as a.st holds them, the Dense layers train on.
  const CliResult frozen = train({"--epochs", "1", "--seed", "7", "--init-from", "a.st", "--freeze",
                                  "conv2d*", "--save", "frozen.st"});
  expect_success(frozen);
  EXPECT_TRUE(contains(frozen.out, "frozen: conv2d, conv2d_1 (4800 non-trainable parameters)"))
      << frozen.out;
  EXPECT_TRUE(contains(frozen.out, "a.st: loaded 4 layer(s) by name: conv2d, conv2d_1, dense"))
      << frozen.out;
  // Loaded, nothing frozen: every layer moves on from a.st.
  expect_success(
      train({"--epochs", "1", "--seed", "7", "--init-from", "a.st", "--save", "tuned.st", "-q"}));
  for (const char* name : {"conv2d/kernel", "conv2d/bias", "conv2d_1/kernel"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(tensor("frozen.st", name), tensor("a.st", name));
    EXPECT_NE(tensor("tuned.st", name), tensor("a.st", name));
  }
  for (const char* name : {"dense/kernel", "dense_1/bias"}) {
    SCOPED_TRACE(name);
    EXPECT_NE(tensor("frozen.st", name), tensor("a.st", name));
  }
  // A resumed run keeps the model and options of its checkpoint: neither flag applies.
  expect_success(train({"--epochs", "1", "--out", "part", "-q"}));
  for (const std::vector<std::string>& flag :
       {std::vector<std::string>{"--freeze", "conv2d"}, {"--init-from", "a.st"}}) {
    std::vector<std::string> args = {"--resume", "part/checkpoints/last.safetensors", "--epochs",
                                     "2", "-q"};
    args.insert(args.end(), flag.begin(), flag.end());
    expect_error(train(args), {flag[0], "--resume"});
  }
}

TEST_F(CliTrainFlags, SkipMismatchLoadsTheLayersThatMatchAndOnlyThose) {
  expect_success(train({"--epochs", "1", "--save", "a.st", "-q"}));
  write_text(in_work("wide.json"), kWideDense);
  const std::vector<std::string> wide = {
      "train",   "--device",  "cpu",      "--data", data_->path().string(),
      "--model", "wide.json", "--epochs", "1",      "--init-from",
      "a.st",    "--lr",      "1e-9"};
  // Without the flag the load is refused, and the message lists each layer that differs.
  const CliResult refused = run(wide);
  ASSERT_TRUE(refused.exited) << refused.describe();
  EXPECT_EQ(refused.exit_code, 1) << refused.describe();
  for (const char* part : {"a.st", "2 layer(s) differ", "dense (Dense)", "dense_1 (Dense)"})
    EXPECT_TRUE(contains(refused.err, part)) << part << "\n" << refused.describe();

  std::vector<std::string> skipping = wide;
  skipping.insert(skipping.end(), {"--skip-mismatch", "--save", "w.st"});
  const CliResult r = run(skipping);
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "a.st: loaded 2 layer(s) by name: conv2d, conv2d_1\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "skipped, does not match: dense (Dense)")) << r.out;
  // At a learning rate of 1e-9 one epoch leaves the loaded kernel within a hair of a.st's.
  const std::vector<float> loaded = tensor("w.st", "conv2d/kernel"),
                           source = tensor("a.st", "conv2d/kernel");
  ASSERT_EQ(loaded.size(), source.size());
  for (size_t i = 0; i < loaded.size(); ++i) EXPECT_NEAR(loaded[i], source[i], 1e-6) << i;
}

TEST_F(CliTrainFlags, MomentumAndNesterovReachSgd) {
  const std::vector<std::string> sgd = {"--optimizer", "sgd", "--lr", "0.02", "--epochs", "2"};
  const auto run_sgd = [&](const std::string& tag, const std::vector<std::string>& extra) {
    return report_of(tag, sgd, extra);
  };
  const json plain = run_sgd("plain", {});
  const json heavy = run_sgd("momentum", {"--momentum", "0.9"});
  const json nesterov = run_sgd("nesterov", {"--momentum", "0.9", "--nesterov"});
  EXPECT_EQ(plain["optimizer"], "sgd(lr=0.02, momentum=0, nesterov=false)");
  EXPECT_EQ(heavy["optimizer"], "sgd(lr=0.02, momentum=0.9, nesterov=false)");
  EXPECT_EQ(nesterov["optimizer"], "sgd(lr=0.02, momentum=0.9, nesterov=true)");
  // Three different trajectories.
  EXPECT_NE(history_of(plain, "loss"), history_of(heavy, "loss"));
  EXPECT_NE(history_of(heavy, "loss"), history_of(nesterov, "loss"));
  EXPECT_NE(plain["test_loss"], heavy["test_loss"]);
  EXPECT_NE(heavy["test_loss"], nesterov["test_loss"]);
}

// With a --min-delta no accuracy can beat (10), nothing improves on epoch 1, so early
// stopping ends the run after epoch 2 with epoch 1 the best: its weights restored by
// default, epoch 2's kept with --no-restore-best. Runs of exactly 1 and 2 epochs (the
// same seed, the same steps) give the weights each must hold.
TEST_F(CliTrainFlags, MinDeltaStopsTheRunAndNoRestoreBestKeepsTheLastEpochsWeights) {
  const auto run_es = [&](const std::string& tag, std::vector<std::string> extra) {
    for (const char* f : {"--epochs", "4", "--patience", "1", "--monitor", "val_accuracy",
                          "--min-delta", "10", "--progress", "lines", "--report"})
      extra.emplace_back(f);
    extra.push_back(tag + ".json");
    extra.insert(extra.end(), {"--save", tag + ".st", "--validation-split", "0.25"});
    const CliResult r = train(extra);
    expect_success(r);
    return std::make_pair(r.out, read_json(in_work(tag + ".json")));
  };
  const auto [restoring_out, restoring] = run_es("restoring", {});
  const auto [keeping_out, keeping] = run_es("keeping", {"--no-restore-best"});
  for (const json* j : {&restoring, &keeping}) {
    EXPECT_EQ((*j)["stopped_early"], true) << j->dump(2);
    EXPECT_EQ((*j)["best_epoch"], 1);
    EXPECT_EQ((*j)["epochs_run"], 2);
  }
  EXPECT_TRUE(contains(restoring_out,
                       "early stopping after epoch 2 (best epoch 1, its weights "
                       "restored)"))
      << restoring_out;
  EXPECT_TRUE(contains(keeping_out, "early stopping after epoch 2 (best epoch 1)\n"))
      << keeping_out;
  for (const char* epochs : {"1", "2"})
    expect_success(train({"--epochs", epochs, "--validation-split", "0.25", "-q", "--save",
                          std::string("epochs") + epochs + ".st"}));
  const std::string restored = read_text(in_work("restoring.st")),
                    kept = read_text(in_work("keeping.st"));
  ASSERT_FALSE(restored.empty());
  EXPECT_TRUE(restored == read_text(in_work("epochs1.st"))) << "not epoch 1's weights";
  EXPECT_TRUE(kept == read_text(in_work("epochs2.st"))) << "not epoch 2's weights";
  EXPECT_TRUE(restored != kept);
  // A negative delta is refused.
  const CliResult bad = train({"--patience", "1", "--min-delta", "-1"});
  ASSERT_TRUE(bad.exited) << bad.describe();
  EXPECT_NE(bad.exit_code, 0) << bad.describe();
  EXPECT_TRUE(contains(bad.err, "--min-delta")) << bad.describe();
}

TEST_F(CliTrainFlags, CsvAndCheckpointDirWriteWhereTheySay) {
  expect_success(train({"--epochs", "2", "--csv", "h.csv", "-q"}));
  const auto rows = read_csv(in_work("h.csv"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "epoch");
  // With a report too, the history goes to --csv, not beside the report.
  expect_success(train({"--epochs", "1", "--csv", "elsewhere.csv", "--report", "r.json", "-q"}));
  EXPECT_TRUE(fs::is_regular_file(in_work("elsewhere.csv")));
  EXPECT_FALSE(fs::exists(in_work("r.csv")));
  EXPECT_EQ(read_json(in_work("r.json"))["history_csv"], "elsewhere.csv");

  const CliResult r = train({"--epochs", "2", "--checkpoint-dir", "ck", "--validation-split",
                             "0.25", "-q", "--report", "ck.json"});
  expect_success(r);
  for (const char* f : {"ck/last.safetensors", "ck/best.safetensors"})
    EXPECT_TRUE(fs::is_regular_file(in_work(f))) << f;
  EXPECT_EQ(read_json(in_work("ck.json"))["checkpoints"]["last"], "ck/last.safetensors");
  // Without the flag (nor --out), no checkpoint is written.
  expect_success(train({"--epochs", "1", "-q"}));
  EXPECT_FALSE(fs::exists(in_work("checkpoints")));
  // A file where the directory should be: refused before training.
  write_text(in_work("a-file"), "x");
  const CliResult bad = train({"--epochs", "1", "--checkpoint-dir", "a-file", "-q"});
  ASSERT_TRUE(bad.exited) << bad.describe();
  EXPECT_NE(bad.exit_code, 0) << bad.describe();
  EXPECT_TRUE(contains(bad.err, "a-file")) << bad.describe();
  EXPECT_FALSE(contains(bad.out, "Epoch")) << bad.describe();
}

TEST_F(CliTrainFlags, CosineWarmupAndFloorShapeTheRates) {
  const std::vector<std::string> schedule = {"--lr-schedule", "cosine", "--epochs", "3"};
  const auto cosine = [&](const std::string& tag, const std::vector<std::string>& extra) {
    return report_of(tag, schedule, extra);
  };
  const json plain = cosine("plain", {});
  const json shaped = cosine("shaped", {"--lr-warmup-epochs", "1", "--lr-min", "1e-4"});
  EXPECT_EQ(plain["lr_schedule"]["kind"], "cosine");
  EXPECT_EQ(shaped["lr_schedule"]["warmup_epochs"], 1.0);
  EXPECT_EQ(shaped["lr_schedule"]["min_lr"], 1e-4);
  const std::vector<double> a = history_of(plain, "lr"), b = history_of(shaped, "lr");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  // The history holds each epoch's last rate. Cosine falls from --lr from the first step;
  // with a warmup it first rises to --lr over that epoch and decays only after it, so
  // epoch 1 ends higher; the floor holds the end at or above --lr-min.
  EXPECT_GT(a[0], a[1]);
  EXPECT_GT(a[1], a[2]);
  EXPECT_GT(b[0], a[0]);
  EXPECT_GT(b[0], b[1]);
  EXPECT_LT(a[2], 1e-4);
  EXPECT_GE(b[2], 1e-4 * (1 - 1e-6));
}

TEST_F(CliTrainFlags, OneCycleShapeFollowsItsFlags) {
  const std::vector<std::string> schedule = {"--lr-schedule", "onecycle", "--epochs", "2"};
  const auto onecycle = [&](const std::string& tag, const std::vector<std::string>& extra) {
    return report_of(tag, schedule, extra);
  };
  const json plain = onecycle("plain", {});
  const json shaped = onecycle(
      "shaped", {"--lr-pct-start", "0.5", "--lr-div-factor", "10", "--lr-final-div-factor", "100"});
  const json& s = shaped["lr_schedule"];
  EXPECT_EQ(s["pct_start"], 0.5);
  EXPECT_EQ(s["div_factor"], 10.0);
  EXPECT_EQ(s["final_div_factor"], 100.0);
  EXPECT_EQ(plain["lr_schedule"]["pct_start"], 0.3);
  // Other start and end rates: every epoch's rate differs from the default schedule's.
  const std::vector<double> a = history_of(plain, "lr"), b = history_of(shaped, "lr");
  ASSERT_EQ(a.size(), b.size());
  for (size_t e = 0; e < a.size(); ++e) EXPECT_NE(a[e], b[e]) << "epoch " << e + 1;
}

// ReduceLROnPlateau as Keras runs it: with a min_delta no epoch can beat, the rate halves
// after every `patience` epochs; a cooldown of 2 skips one epoch after each cut (Keras
// counts the cooldown down before it checks it, so a cooldown of 1 changes nothing here).
TEST_F(CliTrainFlags, PlateauFollowsItsMonitorPatienceDeltaFactorAndCooldown) {
  const std::vector<std::string> schedule = {"--lr-schedule", "plateau", "--lr-monitor",   "loss",
                                             "--lr-patience", "1",       "--lr-min-delta", "100",
                                             "--lr-factor",   "0.5",     "--epochs",       "4"};
  const auto plateau = [&](const std::string& tag, const std::vector<std::string>& extra) {
    return report_of(tag, schedule, extra);
  };
  const json cut = plateau("cut", {});
  const json& s = cut["lr_schedule"];
  EXPECT_EQ(s["kind"], "plateau");
  EXPECT_EQ(s["monitor"], "loss");
  EXPECT_EQ(s["patience"], 1);
  EXPECT_EQ(s["min_delta"], 100.0);
  EXPECT_EQ(s["factor"], 0.5);
  const float lr = 1e-3f;
  const auto f = [](double x) { return static_cast<double>(static_cast<float>(x)); };
  EXPECT_EQ(history_of(cut, "lr"), (std::vector<double>{f(lr), f(lr), f(lr * 0.5), f(lr * 0.25)}));
  const json cooled = plateau("cooled", {"--lr-cooldown", "2"});
  EXPECT_EQ(cooled["lr_schedule"]["cooldown"], 2);
  EXPECT_EQ(history_of(cooled, "lr"),
            (std::vector<double>{f(lr), f(lr), f(lr * 0.5), f(lr * 0.5)}));
  // --lr-monitor val_loss without a validation split has nothing to watch.
  const CliResult r = train({"--lr-schedule", "plateau", "--epochs", "1", "-q"});
  ASSERT_TRUE(r.exited) << r.describe();
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.err, "val_loss")) << r.describe();
}

// --dataset names the folder to take under a --data that holds several.
TEST_F(CliTrainFlags, DatasetPicksTheFolderUnderData) {
  const fs::path parent = in_work("datasets");
  fs::create_directories(parent / "fashion-mnist");
  fs::create_directories(parent / "mnist");
  write_split(parent / "fashion-mnist", "train", 60, 3);
  write_split(parent / "fashion-mnist", "t10k", 20, 4);
  write_split(parent / "mnist", "train", 90, 5);
  write_split(parent / "mnist", "t10k", 30, 6);
  const auto images = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"train",    "--device",  "cpu",      "--data", parent.string(),
                                     "--model",  "mnist-cnn", "--epochs", "1",      "-q",
                                     "--report", "r.json"};
    args.insert(args.end(), extra.begin(), extra.end());
    expect_success(run(args));
    return read_json(in_work("r.json"))["train_images"];
  };
  EXPECT_EQ(images({}), 60);
  EXPECT_EQ(images({"--dataset", "mnist"}), 90);
  EXPECT_EQ(images({"--dataset", "fashion-mnist"}), 60);
}

}  // namespace
}  // namespace cnn
