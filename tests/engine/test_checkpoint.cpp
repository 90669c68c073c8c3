// Checkpoints: the file format (round trip, every truncation and every bit flip refused),
// the run's state (round trip, model checks), a resumed run bit-identical to an
// uninterrupted one for each optimizer and schedule, a writer killed mid-write, and the
// loader for inference.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/io/checkpoint.h"
#include "engine/io/weights_file.h"
#include "engine/train/checkpointing.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp's pointers must not be null, even for 0 bytes (an empty vector's data() may be)
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

class CheckpointTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  test::ScratchDir dir_{"cnn_ckpt"};
};

CheckpointFile small_file() {
  CheckpointFile f;
  f.metadata = {{"format", "test"}, {"note", "a \"quoted\" value\nwith a newline"}};
  f.tensors.push_back({"layer/kernel", {2, 3}, {1, 2, 3, 4, 5, 6}});
  f.tensors.push_back({"layer/bias", {3}, {-1.5f, 0.0f, 1e-30f}});
  f.tensors.push_back({"scalar", {}, {42.0f}});
  f.tensors.push_back({"empty", {0, 4}, {}});
  return f;
}

// ---------------------------------------------------------------------------- the file

TEST_F(CheckpointTest, FileRoundTripKeepsTensorsMetadataAndOrder) {
  const CheckpointFile f = small_file();
  write_checkpoint_file(path("c"), f);
  const CheckpointFile g = read_checkpoint_file(path("c"));
  EXPECT_TRUE(g.checksummed);
  EXPECT_EQ(g.metadata, f.metadata);
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    EXPECT_EQ(g.tensors[i].name, f.tensors[i].name);
    EXPECT_EQ(g.tensors[i].shape, f.tensors[i].shape);
    EXPECT_TRUE(same_bits(g.tensors[i].values, f.tensors[i].values));
  }
  // The format: the data starts 8-byte aligned right after the header, tensors in order.
  const std::string bytes = read_bytes(path("c"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 4 * (6 + 3 + 1));
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.0f);
  EXPECT_FALSE(fs::exists(path("c") + ".tmp." + std::to_string(::getpid())));
}

// Why the file is refused, or "" when it is accepted as a checkpoint file: it parses and
// carries its checksum (which Checkpoint::read requires; a flipped bit in the checksum's
// key leaves a file without one).
std::string parse_error(const std::string& bytes) {
  try {
    if (!parse_checkpoint(bytes, "x.safetensors").checksummed) return "no checksum";
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST_F(CheckpointTest, EveryTruncationIsRefused) {
  const std::string good = serialize_checkpoint(small_file());
  ASSERT_EQ(parse_error(good), "");
  for (size_t len = 0; len < good.size(); ++len) {
    const std::string msg = parse_error(good.substr(0, len));
    ASSERT_NE(msg, "") << "a file cut to " << len << " of " << good.size() << " bytes was accepted";
    ASSERT_NE(msg.find("x.safetensors"), std::string::npos) << msg;
  }
  EXPECT_NE(parse_error(good + "x").find("extra bytes"), std::string::npos);
  EXPECT_NE(parse_error(good.substr(0, good.size() - 4)).find("truncated"), std::string::npos);
}

TEST_F(CheckpointTest, EverySingleBitFlipIsRefused) {
  const std::string good = serialize_checkpoint(small_file());
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    ASSERT_NE(parse_error(bad), "") << "a flipped bit at byte " << i << " went unnoticed";
  }
  std::string data_flip = good;
  data_flip[good.size() - 20] ^= 0x10;
  EXPECT_NE(parse_error(data_flip).find("checksum"), std::string::npos);
}

// Rewrites the header of a serialized file through `edit` (keeping the data as it is).
std::string with_header(const std::string& file, const std::function<void(nlohmann::json&)>& edit) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(file[static_cast<size_t>(i)]);
  nlohmann::json h = nlohmann::json::parse(file.substr(8, n));
  edit(h);
  std::string text = h.dump();
  while (text.size() % 8) text += ' ';
  std::string out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff));
  return out + text + file.substr(8 + n);
}

TEST_F(CheckpointTest, MalformedHeadersAreRefusedWithTheReason) {
  const std::string good = serialize_checkpoint(small_file());
  const auto err = [&](const std::function<void(nlohmann::json&)>& edit) {
    return parse_error(with_header(good, edit));
  };
  EXPECT_NE(parse_error("").find("too short"), std::string::npos);
  EXPECT_NE(
      parse_error(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}").find("header length"),
      std::string::npos);
  std::string not_json = good;
  not_json[9] = '#';
  EXPECT_NE(parse_error(not_json).find("JSON"), std::string::npos);
  EXPECT_NE(err([](nlohmann::json& h) { h["layer/bias"]["dtype"] = "F16"; }).find("F16"),
            std::string::npos);
  EXPECT_NE(err([](nlohmann::json& h) { h["__metadata__"]["n"] = 3; }).find("not a string"),
            std::string::npos);
  EXPECT_NE(err([](nlohmann::json& h) { h["layer/bias"]["shape"] = {4}; }).find("needs"),
            std::string::npos);
  EXPECT_NE(err([](nlohmann::json& h) { h["layer/bias"]["shape"] = {-3}; }).find("impossible"),
            std::string::npos);
  EXPECT_NE(err([](nlohmann::json& h) { h["layer/bias"].erase("data_offsets"); }).find("malformed"),
            std::string::npos);
  // Two tensors sharing bytes, and a tensor's bytes left out.
  EXPECT_NE(err([](nlohmann::json& h) {
              h["scalar"]["data_offsets"] = {0, 4};
            }).find("overlap"),
            std::string::npos);
  EXPECT_NE(err([](nlohmann::json& h) { h.erase("scalar"); }).find("gap"), std::string::npos);
  // A header edited consistently still fails its checksum.
  EXPECT_NE(err([](nlohmann::json& h) { h["__metadata__"]["note"] = "edited"; }).find("checksum"),
            std::string::npos);
  // Without a checksum the file parses (other writers), but is no checkpoint.
  const std::string unchecked =
      with_header(good, [](nlohmann::json& h) { h["__metadata__"].erase("checksum"); });
  EXPECT_FALSE(parse_checkpoint(unchecked, "x").checksummed);
  EXPECT_EQ(parse_error(unchecked), "no checksum");
}

// ---------------------------------------------------------------------------- a run

FitOptions small_options(int epochs) {
  FitOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.validation_split = 0.25;
  return o;
}

RunInfo small_run(const Model& m, uint64_t seed, const FitOptions& o) {
  RunInfo r;
  r.model = ModelDescription::of(m, false);
  r.seed = seed;
  r.options = fit_options_to_json(o);
  return r;
}

struct Outcome {
  History history;
  Parameters::Snapshot weights;
};

// Trains the small model to `o.epochs`, from scratch or from the checkpoint `resume`,
// writing checkpoints to `ckpt_dir` when it is not empty.
Outcome train(const FitOptions& o, uint64_t seed, const std::string& ckpt_dir,
              const std::string& resume = "") {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, seed);
  FitOptions opt = o;
  std::optional<Checkpoint> ckpt;
  std::optional<TrainState> state;
  if (!resume.empty()) {
    ckpt = Checkpoint::read(resume);
    state = ckpt->state(m, t.parameters());
  }
  std::optional<Checkpointer> cp;
  if (!ckpt_dir.empty()) {
    cp.emplace(ckpt_dir, m, t.parameters(), small_run(m, seed, o), "val_loss",
               ckpt ? &*ckpt : nullptr);
    opt.callbacks.push_back(&*cp);
  }
  Outcome out;
  out.history = t.fit(testing::quadrant_dataset(320, 8), opt, state ? &*state : nullptr);
  out.weights = t.parameters().snapshot();
  return out;
}

void expect_same_history(const History& a, const History& b) {
  ASSERT_EQ(a.epochs.size(), b.epochs.size());
  for (size_t e = 0; e < a.epochs.size(); ++e) {
    SCOPED_TRACE("epoch " + std::to_string(e + 1));
    EXPECT_EQ(a.epochs[e].epoch, b.epochs[e].epoch);
    EXPECT_EQ(a.epochs[e].loss, b.epochs[e].loss);
    EXPECT_EQ(a.epochs[e].accuracy, b.epochs[e].accuracy);
    EXPECT_EQ(a.epochs[e].val_loss, b.epochs[e].val_loss);
    EXPECT_EQ(a.epochs[e].val_accuracy, b.epochs[e].val_accuracy);
    EXPECT_EQ(a.epochs[e].lr, b.epochs[e].lr);
  }
  EXPECT_EQ(a.stopped_early, b.stopped_early);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  EXPECT_EQ(a.restored_best, b.restored_best);
}

struct ResumeCase {
  const char* label;
  OptimizerKind optimizer;
  float momentum;
  LrScheduleKind schedule;
  bool augment;
};

class ResumeBitIdentical : public CheckpointTest,
                           public ::testing::WithParamInterface<ResumeCase> {};

// Three epochs straight, against one epoch, then a resume to two, then a resume to three:
// the same weights (bit for bit), batch-norm statistics, history and early-stopping state.
TEST_P(ResumeBitIdentical, OneAndOneAndOneEqualsThree) {
  const ResumeCase& c = GetParam();
  FitOptions o = small_options(3);
  o.optimizer.kind = c.optimizer;
  o.optimizer.momentum = c.momentum;
  if (c.optimizer == OptimizerKind::Sgd) o.optimizer.learning_rate = 0.05f;
  o.lr_schedule.kind = c.schedule;
  o.lr_schedule.cycle_momentum = c.optimizer != OptimizerKind::Rmsprop;  // it has none
  o.lr_schedule.schedule_epochs = 3;
  o.lr_schedule.warmup_epochs = 0.5;
  o.lr_schedule.step_epochs = 1;
  o.lr_schedule.factor = 0.5;
  o.lr_schedule.patience = 0;
  o.lr_schedule.monitor = "val_accuracy";
  o.augment.flip = c.augment;
  o.augment.max_shift = c.augment ? 1 : 0;
  o.early_stopping.enabled = true;  // never triggers: its state and best weights still travel
  o.early_stopping.patience = 10;
  o.early_stopping.monitor = "val_loss";
  const Outcome straight = train(o, 21, path("straight"));

  FitOptions first = o;
  first.epochs = 1;
  train(first, 21, path("a"));
  FitOptions second = o;
  second.epochs = 2;
  train(second, 21, path("b"), path("a/last.safetensors"));
  const Outcome resumed = train(o, 21, path("c"), path("b/last.safetensors"));

  EXPECT_TRUE(same_bits(straight.weights.values, resumed.weights.values));
  EXPECT_TRUE(same_bits(straight.weights.state, resumed.weights.state));
  expect_same_history(straight.history, resumed.history);
  // The checkpoints of the last epoch hold the same tensors, bit for bit.
  const CheckpointFile x = read_checkpoint_file(path("straight/last.safetensors"));
  const CheckpointFile y = read_checkpoint_file(path("c/last.safetensors"));
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    EXPECT_EQ(x.tensors[i].name, y.tensors[i].name);
    EXPECT_TRUE(same_bits(x.tensors[i].values, y.tensors[i].values)) << x.tensors[i].name;
  }
  for (const char* key : {"epoch", "iterations", "lr_schedule_state", "early_stopping_state",
                          "checkpoint_best_epoch", "optimizer_slots"})
    EXPECT_EQ(x.metadata.at(key), y.metadata.at(key)) << key;
}

INSTANTIATE_TEST_SUITE_P(
    Runs, ResumeBitIdentical,
    ::testing::Values(
        ResumeCase{"AdamCosineAugmented", OptimizerKind::Adam, 0.0f, LrScheduleKind::Cosine, true},
        ResumeCase{"SgdMomentumPlateau", OptimizerKind::Sgd, 0.9f, LrScheduleKind::Plateau, false},
        ResumeCase{"RmspropOneCycle", OptimizerKind::Rmsprop, 0.0f, LrScheduleKind::OneCycle, true},
        // One-cycle gives SGD without momentum a velocity and cycles its momentum.
        ResumeCase{"SgdOneCycleMomentum", OptimizerKind::Sgd, 0.0f, LrScheduleKind::OneCycle,
                   false},
        ResumeCase{"SgdStep", OptimizerKind::Sgd, 0.0f, LrScheduleKind::Step, false}),
    [](const ::testing::TestParamInfo<ResumeCase>& p) { return std::string(p.param.label); });

TEST_F(CheckpointTest, StateRoundTripsThroughTheFile) {
  FitOptions o = small_options(2);
  o.early_stopping.enabled = true;
  o.early_stopping.patience = 5;
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 5);
  TrainState captured;
  struct Grab : FitCallback {
    TrainState* out;
    void on_epoch_end(const EpochEnd& e) override { *out = e.capture_state(); }
  } grab;
  grab.out = &captured;
  Checkpointer cp(path("ck"), m, t.parameters(), small_run(m, 5, o), "val_accuracy");
  o.callbacks = {&cp, &grab};
  t.fit(testing::quadrant_dataset(200, 3), o);
  EXPECT_EQ(cp.last_epoch(), 2);
  EXPECT_GE(cp.best_epoch(), 1);

  const Checkpoint c = Checkpoint::read(cp.last_path());
  EXPECT_EQ(c.epoch(), 2);
  EXPECT_EQ(c.run().seed, 5u);
  EXPECT_EQ(c.run().model.name, "small-stochastic");
  EXPECT_EQ(c.run().options, fit_options_to_json(o));
  const TrainState s = c.state(m, t.parameters());
  EXPECT_EQ(s.epoch, captured.epoch);
  EXPECT_EQ(s.iterations, captured.iterations);
  EXPECT_EQ(s.iterations, 2 * 10);  // 150 training samples, batch 16
  EXPECT_EQ(s.train_samples, 150);
  EXPECT_TRUE(same_bits(s.weights.values, captured.weights.values));
  EXPECT_TRUE(same_bits(s.weights.state, captured.weights.state));
  ASSERT_EQ(s.optimizer_slots.size(), 2u);  // Adam: m and v
  EXPECT_EQ(s.optimizer_slots[0].name, "m");
  EXPECT_EQ(s.optimizer_slots[1].name, "v");
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(same_bits(s.optimizer_slots[i].values, captured.optimizer_slots[i].values));
  EXPECT_TRUE(same_bits(s.best_weights.values, captured.best_weights.values));
  EXPECT_EQ(s.stopping.best, captured.stopping.best);
  EXPECT_EQ(s.stopping.best_epoch, captured.stopping.best_epoch);
  EXPECT_EQ(s.schedule, captured.schedule);
  expect_same_history(s.history, captured.history);
  // Named by layer, the optimizer's moments beside the weights.
  const CheckpointFile& f = c.file();
  EXPECT_NE(f.find("conv2d/kernel"), nullptr);
  EXPECT_NE(f.find("batch_normalization/moving_mean"), nullptr);
  EXPECT_NE(f.find("optimizer/m/conv2d/kernel"), nullptr);
  EXPECT_NE(f.find("optimizer/v/dense_1/bias"), nullptr);
  EXPECT_EQ(f.find("optimizer/m/batch_normalization/moving_mean"), nullptr);
  EXPECT_NE(f.find("early_stopping/best/dense_1/bias"), nullptr);
  // best.safetensors is the best epoch's.
  EXPECT_EQ(Checkpoint::read(cp.best_path()).epoch(), cp.best_epoch());
}

TEST_F(CheckpointTest, AnotherModelsCheckpointIsRefused) {
  train(small_options(1), 3, path("ck"));
  CpuBackend be;
  Model other = build_model("mnist-cnn");
  Parameters p(other, be);
  const Checkpoint c = Checkpoint::read(path("ck/last.safetensors"));
  try {
    c.state(other, p);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("small-stochastic"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mnist-cnn"), std::string::npos) << msg;
    EXPECT_NE(msg.find("last.safetensors"), std::string::npos) << msg;
  }
  // A model of the same name with other shapes is refused by its tensors.
  Model same_name("small-stochastic");
  same_name.input(Shape{1, 8, 8});
  same_name.add(layers::conv2d(5, 3, "same", Activation::Relu));
  same_name.add(layers::flatten());
  same_name.add(layers::dense(4, Activation::Softmax));
  same_name.finish();
  Parameters q(same_name, be);
  try {
    c.state(same_name, q);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, ResumingWithOtherDataOrBatchOrTooFewEpochsIsRefused) {
  train(small_options(2), 3, path("ck"));
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 3);
  const Checkpoint c = Checkpoint::read(path("ck/last.safetensors"));
  const TrainState s = c.state(m, t.parameters());
  FitOptions o = small_options(2);
  EXPECT_THROW(t.fit(testing::quadrant_dataset(320, 8), o, &s), ConfigError);  // done already
  o.epochs = 3;
  EXPECT_THROW(t.fit(testing::quadrant_dataset(100, 8), o, &s), ConfigError);  // other data
  o.batch_size = 32;
  EXPECT_THROW(t.fit(testing::quadrant_dataset(320, 8), o, &s), ConfigError);  // other batch
  o.batch_size = 16;
  o.optimizer.kind = OptimizerKind::Rmsprop;
  EXPECT_THROW(t.fit(testing::quadrant_dataset(320, 8), o, &s), ConfigError);  // other slots
}

TEST_F(CheckpointTest, WeightsFilesAndForeignFilesAreNotCheckpoints) {
  CpuBackend be;
  Model m = build_model("mnist-cnn");
  Parameters p(m, be);
  p.initialize(1);
  save_weights(path("w.safetensors"), m, p);
  try {
    Checkpoint::read(path("w.safetensors"));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("weights file"), std::string::npos) << e.what();
  }
  CheckpointFile foreign = small_file();
  foreign.metadata.erase("format");
  write_checkpoint_file(path("f"), foreign);
  EXPECT_THROW(Checkpoint::read(path("f")), DataError);
  EXPECT_THROW(Checkpoint::read(path("missing")), DataError);
}

TEST_F(CheckpointTest, InferenceLoadsTheModelAndWeightsOfACheckpointOrAWeightsFile) {
  // A zoo model, so the loader can build it from the name in the file.
  CpuBackend be;
  Model m = build_model("mnist-cnn");
  Trainer t(m, be, 7);
  Dataset d;
  d.images = Tensor::zeros_host(Shape{40, 1, 28, 28});
  d.labels = Tensor::zeros_host(Shape{40});
  d.classes = 10;
  for (int64_t i = 0; i < 40; ++i) {
    d.labels.host()[i] = static_cast<float>(i % 10);
    d.images.host()[i * 784 + (i % 10) * 50] = 1.0f;
  }
  FitOptions o;
  o.batch_size = 20;
  Checkpointer cp(path("ck"), m, t.parameters(), small_run(m, 7, o), "loss");
  o.callbacks = {&cp};
  t.fit(d, o);
  save_weights(path("w.safetensors"), m, t.parameters());
  const Tensor expected = t.predict(d.images);

  for (const std::string& file : {cp.last_path(), path("w.safetensors")}) {
    SCOPED_TRACE(file);
    const auto loaded = load_checkpoint_for_inference(file, be);
    EXPECT_EQ(loaded->model.name(), "mnist-cnn");
    EXPECT_NE(loaded->source.find(file), std::string::npos) << loaded->source;
    EXPECT_TRUE(same_bits(loaded->params->snapshot().values, t.parameters().snapshot().values));
    Trainer again(loaded->model, be, 0);
    Checkpoint::read(file, true).load_weights(loaded->model, again.parameters());
    const Tensor probs = again.predict(d.images);
    EXPECT_EQ(0, std::memcmp(probs.host(), expected.host(),
                             static_cast<size_t>(expected.numel()) * sizeof(float)));
  }
  EXPECT_THROW(load_checkpoint_for_inference(cp.last_path(), be, "fashion-cnn"), DataError);
}

// ---------------------------------------------------------------------------- kills

// A child process rewrites a large checkpoint again and again (alternating two versions)
// and is killed at a random moment: the file at the path is always one whole version,
// the temporary it leaves is never taken for it, and the next checkpointer removes it.
TEST_F(CheckpointTest, AWriterKilledMidWriteLeavesTheLastWholeFile) {
  const std::string target = path("last.safetensors");
  std::vector<std::string> versions;
  for (int v = 0; v < 2; ++v) {
    CheckpointFile f;
    f.metadata["format"] = kCheckpointFormat;
    f.metadata["version"] = std::to_string(v);
    f.tensors.push_back({"big", {2, 1 << 20}, std::vector<float>(size_t(2) << 20, float(v + 1))});
    versions.push_back(serialize_checkpoint(f));
  }
  write_file_atomic(target, versions[0]);
  std::srand(12345);
  int saw_temp = 0;
  for (int round = 0; round < 8; ++round) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int k = 1;; ++k) {
        try {
          write_file_atomic(target, versions[static_cast<size_t>(k % 2)]);
        } catch (...) {
          ::_exit(3);
        }
      }
    }
    // Kill somewhere in the first few writes: spread over serialisation-free writes, the
    // fsync and the rename.
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + std::rand() % 30000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer failed on its own";
    const std::string now = read_bytes(target);
    EXPECT_TRUE(now == versions[0] || now == versions[1]) << "round " << round << ": a torn file";
    const CheckpointFile f = read_checkpoint_file(target);  // loads
    EXPECT_EQ(f.tensors.at(0).values.back(), std::stof(f.metadata.at("version")) + 1);
    const std::string temp = target + ".tmp." + std::to_string(pid);
    if (fs::exists(temp)) {
      ++saw_temp;
      EXPECT_EQ(remove_stale_temporaries(dir_.path().string(), "last.safetensors"), 1);
      EXPECT_FALSE(fs::exists(temp));
    }
  }
  EXPECT_EQ(remove_stale_temporaries(dir_.path().string(), "last.safetensors"), 0);
  // Whether a kill left a temporary is up to chance; one left by a process that has
  // ended is made here for certain, and removed.
  const pid_t gone = ::fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  const std::string stale = target + ".tmp." + std::to_string(gone);
  write_bytes(stale, "partial");
  EXPECT_EQ(remove_stale_temporaries(dir_.path().string(), "last.safetensors"), 1);
  EXPECT_FALSE(fs::exists(stale));
  // A temporary of a live process (this one) is left alone.
  write_bytes(target + ".tmp." + std::to_string(::getpid()), "partial");
  EXPECT_EQ(remove_stale_temporaries(dir_.path().string(), "last.safetensors"), 0);
  RecordProperty("temporaries_left_by_kills", saw_temp);
}

// ---------------------------------------------------------------------------- Python

// PyTorch's safetensors reads the file (when this machine's python3 has the package, or
// CNN_TEST_PYTHON names one that does).
TEST_F(CheckpointTest, PythonSafetensorsReadsIt) {
  const char* env = std::getenv("CNN_TEST_PYTHON");
  const std::string python = env ? env : "python3";
  if (std::system((python + " -c 'import safetensors.numpy' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " has no safetensors package";
  train(small_options(1), 3, path("ck"));
  const std::string script = path("read.py");
  write_bytes(script,
              "import sys\n"
              "from safetensors.numpy import load_file\n"
              "from safetensors import safe_open\n"
              "t = load_file(sys.argv[1])\n"
              "with safe_open(sys.argv[1], 'np') as f: md = f.metadata()\n"
              "k = t['conv2d/kernel']\n"
              "print(len(t), k.dtype, k.shape, md['model'], md['epoch'], "
              "repr(float(t['optimizer/m/dense_1/bias'][0])))\n");
  const std::string out = path("out.txt");
  ASSERT_EQ(std::system(
                (python + " " + script + " " + path("ck/last.safetensors") + " > " + out).c_str()),
            0);
  const Checkpoint c = Checkpoint::read(path("ck/last.safetensors"));
  const CheckpointFile::Tensor* m = c.file().find("optimizer/m/dense_1/bias");
  ASSERT_NE(m, nullptr);
  char expected_value[64];
  std::snprintf(expected_value, sizeof expected_value, "%.17g", static_cast<double>(m->values[0]));
  const std::string got = read_bytes(out);
  EXPECT_NE(got.find(std::to_string(c.file().tensors.size()) + " float32 (4, 1, 3, 3) "
                                                               "small-stochastic 1"),
            std::string::npos)
      << got;
  EXPECT_EQ(std::stod(got.substr(got.rfind(' ') + 1)), static_cast<double>(m->values[0])) << got;
}

}  // namespace
}  // namespace cnn
