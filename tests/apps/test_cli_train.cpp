// `cnn train` as a user runs it, for what issue 5 added: progress (a bar on a terminal,
// lines in a pipe, nothing with --quiet), the history CSV, --out, checkpoints, --resume
// (bit-identical to an uninterrupted run, and refusing another model or other options),
// schedules and augmentation in the report, `cnn evaluate --checkpoint`, and a diverging
// run. The data is a small synthetic set written as IDX files, so each run takes well
// under a second and needs no download.
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"
#include "apps/cli_train_fixture.h"
#include "engine/io/checkpoint.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using clitest::CliResult;
using clitest::CliTrain;
using clitest::contains;
using clitest::expect_error;
using clitest::expect_success;
using clitest::read_csv;
using clitest::read_json;
using clitest::read_text;
using clitest::ScratchDir;
using clitest::split_lines;
using clitest::write_split;
using clitest::write_text;
using nlohmann::json;

// What a run under a pseudo-terminal printed, and how it ended.
struct PtyResult {
  bool exited = false;
  int exit_code = -1;
  std::string out;  // stdout and stderr together, as a terminal shows them
};

PtyResult run_in_pty(const std::string& binary, const std::vector<std::string>& args,
                     const fs::path& cwd) {
  std::vector<std::string> storage = {binary};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string dir = cwd.string();
  std::fflush(nullptr);
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) throw std::runtime_error("forkpty failed");
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  PtyResult r;
  char buf[4096];
  for (;;) {
    const ssize_t got = ::read(master, buf, sizeof buf);
    if (got > 0) {
      r.out.append(buf, static_cast<size_t>(got));
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EOF, or EIO once the child has closed the terminal
    }
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exited = WIFEXITED(status);
  if (r.exited) r.exit_code = WEXITSTATUS(status);
  return r;
}

TEST_F(CliTrain, OutWritesTheReportTheCsvAndBothCheckpoints) {
  const CliResult r = train({"--epochs", "2", "--validation-split", "0.25", "--out", "run",
                             "--lr-schedule", "step", "--lr-step-epochs", "1", "--lr-factor", "0.5",
                             "--augment-flip", "--augment-shift", "2"});
  expect_success(r);
  for (const char* f : {"run/report.json", "run/history.csv", "run/checkpoints/last.safetensors",
                        "run/checkpoints/best.safetensors"})
    EXPECT_TRUE(fs::is_regular_file(in_work(f))) << f;
  // Not a terminal: one plain line per epoch, no carriage return.
  EXPECT_TRUE(contains(r.out, "Epoch 1/2 - 10 steps - ")) << r.out;
  EXPECT_TRUE(contains(r.out, "Epoch 2/2 - 10 steps - ")) << r.out;
  EXPECT_FALSE(contains(r.out, "\r")) << r.out;
  EXPECT_TRUE(contains(r.out, " - lr: 1.0000e-03\n")) << r.out;
  EXPECT_TRUE(contains(r.out, " - lr: 5.0000e-04\n")) << r.out;

  const json j = read_json(in_work("run/report.json"));
  EXPECT_EQ(j["lr_schedule"]["kind"], "step");
  EXPECT_EQ(j["augmentation"]["flip"], true);
  EXPECT_EQ(j["augmentation"]["max_shift"], 2);
  EXPECT_EQ(j["augmentation"]["seed"], 42);
  EXPECT_EQ(j["history_csv"], "run/history.csv");
  EXPECT_EQ(j["checkpoints"]["last"], "run/checkpoints/last.safetensors");
  EXPECT_EQ(j["checkpoints"]["monitor"], "val_loss");
  const json& h = j["history"];
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["lr"].get<double>(), static_cast<double>(1e-3f));
  EXPECT_EQ(h[1]["lr"].get<double>(),
            static_cast<double>(static_cast<float>(static_cast<double>(1e-3f) * 0.5)));

  // Keras's CSVLogger: epoch (from 0) and the sorted metric names; the report's numbers.
  const auto rows = read_csv(in_work("run/history.csv"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"epoch", "accuracy", "learning_rate", "loss",
                                               "val_accuracy", "val_loss"}));
  for (size_t e = 0; e < 2; ++e) {
    SCOPED_TRACE("epoch " + std::to_string(e));
    ASSERT_EQ(rows[e + 1].size(), 6u);
    EXPECT_EQ(rows[e + 1][0], std::to_string(e));
    EXPECT_EQ(std::stod(rows[e + 1][1]), h[e]["accuracy"].get<double>());
    EXPECT_EQ(std::stod(rows[e + 1][2]), h[e]["lr"].get<double>());
    EXPECT_EQ(std::stod(rows[e + 1][3]), h[e]["loss"].get<double>());
    EXPECT_EQ(std::stod(rows[e + 1][4]), h[e]["val_accuracy"].get<double>());
    EXPECT_EQ(std::stod(rows[e + 1][5]), h[e]["val_loss"].get<double>());
  }

  // The last checkpoint evaluates to the run's test figures; --model must agree with it.
  const CliResult ev = run({"evaluate", "--device", "cpu", "--data", data_->path().string(),
                            "--checkpoint", "run/checkpoints/last.safetensors"});
  expect_success(ev);
  char expected[128];
  std::snprintf(expected, sizeof expected, "test: 100 images - loss %.4f - accuracy %.4f",
                j["test_loss"].get<double>(), j["test_accuracy"].get<double>());
  EXPECT_TRUE(contains(ev.out, expected)) << ev.out << "\nwanted: " << expected;
  expect_error(run({"evaluate", "--device", "cpu", "--data", data_->path().string(), "--checkpoint",
                    "run/checkpoints/best.safetensors", "--model", "mnist-functional"}),
               {"best.safetensors", "mnist-cnn", "mnist-functional"});
}

TEST_F(CliTrain, ReportGetsACsvBesideItAndQuietPrintsNoProgress) {
  const CliResult r = train({"--epochs", "1", "--report", "r.json", "--quiet"});
  expect_success(r);
  EXPECT_FALSE(contains(r.out, "Epoch")) << r.out;
  EXPECT_FALSE(contains(r.out, "model:")) << r.out;
  EXPECT_TRUE(contains(r.out, "test: loss ")) << r.out;
  const auto rows = read_csv(in_work("r.csv"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"epoch", "accuracy", "loss"}));
  // No augmentation unless asked for (--augment-flip and --augment-shift: the test above).
  const json j = read_json(in_work("r.json"));
  EXPECT_EQ(j["augmentation"]["flip"], false) << j["augmentation"].dump();
  EXPECT_EQ(j["augmentation"]["max_shift"], 0) << j["augmentation"].dump();
}

// `cnn --version` names the build (the tree's commit, "-dirty" for uncommitted changes,
// "unknown" outside a git checkout), and every train report carries the same.
TEST_F(CliTrain, VersionAndReportNameTheSameBuild) {
  const CliResult v = run({"--version"});
  expect_success(v);
  static const std::regex line(
      R"(^cnn (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,}(-dirty)?|unknown), (\w+), (.+), (CUDA \S+|CPU only)\)\n$)");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(v.out, m, line)) << v.out;
  expect_success(train({"--epochs", "1", "--report", "r.json", "--quiet"}));
  const json build = read_json(in_work("r.json"))["build"];
  EXPECT_EQ(build["version"], m[1].str());
  EXPECT_EQ(build["commit"], m[2].str());
  EXPECT_EQ(build["build_type"], m[4].str());
  EXPECT_EQ(build["compiler"], m[5].str());
  EXPECT_EQ(build["cuda_toolkit"].is_null(), m[6].str() == "CPU only");
}

TEST_F(CliTrain, ATerminalGetsAProgressBarAndLinesOnRequest) {
  const fs::path dir = work();
  const PtyResult bar =
      run_in_pty(CNN_BINARY, train_args({"--epochs", "2", "--batch-size", "8"}), dir);
  ASSERT_TRUE(bar.exited && bar.exit_code == 0) << bar.out;
  EXPECT_TRUE(contains(bar.out, "Epoch 1/2\r\n")) << bar.out;  // the terminal's line ends
  EXPECT_TRUE(contains(bar.out, "\r50/50 [==============================] - ")) << bar.out;
  // The step time's unit follows its size (us, ms or s): steps of 8 images may take less
  // than a millisecond on a fast machine.
  EXPECT_TRUE(std::regex_search(bar.out, std::regex(R"(\d(us|ms|s)/step - loss: )"))) << bar.out;
  EXPECT_TRUE(contains(bar.out, "ETA: ")) << bar.out;
  EXPECT_TRUE(contains(bar.out, "elapsed")) << bar.out;
  EXPECT_TRUE(contains(bar.out, "\r 1/50 [")) << bar.out;  // redrawn in place from step 1

  const PtyResult lines = run_in_pty(
      CNN_BINARY, train_args({"--epochs", "1", "--batch-size", "8", "--progress", "lines"}), dir);
  ASSERT_TRUE(lines.exited && lines.exit_code == 0) << lines.out;
  EXPECT_TRUE(contains(lines.out, "Epoch 1/1 - 50 steps - ")) << lines.out;
  EXPECT_FALSE(contains(lines.out, "[====")) << lines.out;

  // And a pipe with --progress bar draws the bar too.
  const CliResult forced = train({"--epochs", "1", "--progress", "bar"});
  expect_success(forced);
  EXPECT_TRUE(contains(forced.out, "\r13/13 [")) << forced.out;
}

// One-cycle cycles the momentum of SGD and Adam unless told not to, never RMSprop's (it
// has none), and the report says which.
TEST_F(CliTrain, OneCycleRecordsWhetherItCyclesTheMomentum) {
  const auto schedule_of = [&](const std::string& out, std::vector<std::string> extra) {
    for (const char* flag : {"--epochs", "1", "--lr-schedule", "onecycle", "-q", "--out"})
      extra.emplace_back(flag);
    extra.push_back(out);
    expect_success(train(extra));
    return read_json(in_work(out + "/report.json"))["lr_schedule"];
  };
  const json sgd = schedule_of("sgd", {"--optimizer", "sgd", "--lr", "0.05"});
  EXPECT_EQ(sgd["cycle_momentum"], true);
  EXPECT_TRUE(contains(sgd["description"].get<std::string>(), "momentum 0.95 -> 0.85 -> 0.95"))
      << sgd.dump();
  const json rmsprop = schedule_of("rmsprop", {"--optimizer", "rmsprop"});
  EXPECT_EQ(rmsprop["cycle_momentum"], false);
  EXPECT_TRUE(contains(rmsprop["description"].get<std::string>(), "momentum not cycled"));
  EXPECT_EQ(schedule_of("off", {"--lr-no-cycle-momentum"})["cycle_momentum"], false);
  const json adam = schedule_of("adam", {"--lr-max-momentum", "0.9", "--lr-base-momentum", "0.8"});
  EXPECT_EQ(adam["cycle_momentum"], true);
  EXPECT_EQ(adam["max_momentum"], 0.9);
  EXPECT_EQ(adam["base_momentum"], 0.8);
}

// Two epochs straight against one, then a resume to two: the same weights file, history
// and CSV; and what a resume refuses.
TEST_F(CliTrain, ResumeEndsBitIdenticalAndRefusesAnotherRun) {
  const std::vector<std::string> common = {"--validation-split",
                                           "0.25",
                                           "--augment-flip",
                                           "--augment-shift",
                                           "1",
                                           "--lr-schedule",
                                           "cosine",
                                           "--lr-schedule-epochs",
                                           "2",
                                           "-q"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), common.begin(), common.end());
    return extra;
  };
  expect_success(train(with({"--epochs", "2", "--out", "straight", "--save", "straight.st"})));
  expect_success(train(with({"--epochs", "1", "--out", "part"})));
  const std::string ckpt = "part/checkpoints/last.safetensors";
  const CliResult resumed =
      run({"train", "--device", "cpu", "--data", data_->path().string(), "--resume", ckpt,
           "--epochs", "2", "--out", "resumed", "--save", "resumed.st"});
  expect_success(resumed);
  EXPECT_TRUE(contains(resumed.out, "resuming " + ckpt + " after epoch 1 of 2")) << resumed.out;
  EXPECT_TRUE(contains(resumed.out, "Epoch 2/2")) << resumed.out;
  EXPECT_FALSE(contains(resumed.out, "Epoch 1/2")) << resumed.out;
  const std::string a = read_text(in_work("straight.st")), b = read_text(in_work("resumed.st"));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "the resumed run's weights differ from the uninterrupted run's";
  EXPECT_EQ(read_text(in_work("straight/history.csv")), read_text(in_work("resumed/history.csv")));
  const json js = read_json(in_work("straight/report.json"));
  const json jr = read_json(in_work("resumed/report.json"));
  EXPECT_EQ(jr["initial_epoch"], 1);
  EXPECT_EQ(jr["resumed_from"], ckpt);
  EXPECT_EQ(js["test_loss"], jr["test_loss"]);
  ASSERT_EQ(jr["history"].size(), 2u);
  for (size_t e = 0; e < 2; ++e)
    for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "lr"})
      EXPECT_EQ(js["history"][e][key], jr["history"][e][key]) << key << " of epoch " << e + 1;
  // The last checkpoints hold the same tensors (their metadata differs: epoch times).
  const CheckpointFile cs = read_checkpoint_file(in_work("straight/checkpoints/last.safetensors"));
  const CheckpointFile cr = read_checkpoint_file(in_work("resumed/checkpoints/last.safetensors"));
  ASSERT_EQ(cs.tensors.size(), cr.tensors.size());
  for (size_t i = 0; i < cs.tensors.size(); ++i) {
    EXPECT_EQ(cs.tensors[i].name, cr.tensors[i].name);
    EXPECT_TRUE(cs.tensors[i].values == cr.tensors[i].values) << cs.tensors[i].name;
  }
  EXPECT_EQ(cs.metadata.at("iterations"), cr.metadata.at("iterations"));
  EXPECT_EQ(cs.metadata.at("lr_schedule_state"), cr.metadata.at("lr_schedule_state"));

  const std::vector<std::string> resume = {"--resume", ckpt, "-q"};
  auto resume_with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), resume.begin(), resume.end());
    return train(extra);
  };
  expect_error(run({"train", "--device", "cpu", "--data", data_->path().string(), "--resume", ckpt,
                    "--model", "mnist-functional", "--epochs", "2"}),
               {"mnist-cnn", "mnist-functional", "another model"});
  expect_error(resume_with({"--epochs", "1"}), {"already completed 1 epochs", "--epochs 2"});
  expect_error(resume_with({"--epochs", "2", "--batch-size", "64"}),
               {"--batch-size 64", "checkpoint's 32"});
  expect_error(resume_with({"--epochs", "2", "--lr", "0.5"}), {"--lr", "checkpoint"});
  // Naming the same options again is fine.
  expect_success(resume_with({"--epochs", "2", "--batch-size", "32", "--augment-flip"}));

  // A damaged checkpoint is refused before anything runs.
  const std::string whole = read_text(in_work(ckpt));
  write_text(in_work("cut.safetensors"), whole.substr(0, whole.size() / 2));
  std::string flipped = whole;
  flipped[flipped.size() - 7] ^= 0x20;
  write_text(in_work("flipped.safetensors"), flipped);
  expect_error(run({"train", "--device", "cpu", "--resume", "cut.safetensors"}),
               {"cut.safetensors", "truncated"});
  expect_error(run({"train", "--device", "cpu", "--resume", "flipped.safetensors"}),
               {"flipped.safetensors", "checksum", "corrupt"});
  expect_error(run({"evaluate", "--device", "cpu", "--checkpoint", "flipped.safetensors"}),
               {"flipped.safetensors", "checksum"});
  expect_error(run({"train", "--device", "cpu", "--resume", "straight.st"}),
               {"straight.st", "weights file"});
}

TEST_F(CliTrain, ADivergingRunStopsWithOneMessageAndAReport) {
  const CliResult r = train({"--epochs", "3", "--optimizer", "sgd", "--lr", "1e30", "--out", "d"});
  // With ReLUs the NaN may hide from the loss and show in the weights at the epoch's end;
  // either way the run stops in epoch 1 and says why.
  expect_error(r, {"training diverged in epoch 1", "finite", "try a lower",
                   "no epoch completed, so no checkpoint was written"});
  const json j = read_json(in_work("d/report.json"));
  ASSERT_TRUE(j.contains("error")) << j.dump(2);
  EXPECT_TRUE(contains(j["error"].get<std::string>(), "training diverged")) << j.dump(2);
  EXPECT_FALSE(fs::exists(in_work("d/checkpoints/last.safetensors")));
}

TEST_F(CliTrain, EvaluateNeedsACheckpointOrWeights) {
  expect_error(run({"evaluate", "--device", "cpu"}), {"--checkpoint", "--weights"});
  expect_success(train({"--epochs", "1", "--save", "w.st", "-q"}));
  expect_error(run({"evaluate", "--device", "cpu", "--checkpoint", "w.st", "--weights", "w.st"}),
               {"not both"});
  // A weights file through --checkpoint: its metadata names the model.
  const CliResult ev = run(
      {"evaluate", "--device", "cpu", "--data", data_->path().string(), "--checkpoint", "w.st"});
  expect_success(ev);
  EXPECT_TRUE(contains(ev.out, "test: 100 images")) << ev.out;
  EXPECT_TRUE(contains(ev.out, " (1 step of batch 256)\n")) << ev.out;
  // Another batch size: more steps, the last one partial, the same figures.
  const CliResult small = run({"evaluate", "--device", "cpu", "--data", data_->path().string(),
                               "--checkpoint", "w.st", "--batch-size", "7"});
  expect_success(small);
  EXPECT_TRUE(contains(small.out, " (15 steps of batch 7)\n")) << small.out;
  const auto figures = [](const std::string& out) {
    const size_t at = out.find("test: ");
    return at == std::string::npos ? out : out.substr(at, out.find(" (", at) - at);
  };
  EXPECT_EQ(figures(small.out), figures(ev.out));
}

}  // namespace
}  // namespace cnn
