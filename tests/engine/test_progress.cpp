// Progress as Keras shows it, with an injected clock and output: the bar's pieces, the bar
// mode (redrawn in place, then the epoch's line), the line mode, quiet; the CSV of the
// history (Keras's CSVLogger columns and number format); and how often fit reads the
// running metrics (a read synchronizes a GPU).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/train/progress.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

TEST(ProgressBar, DrawsLikeKerasProgbar) {
  EXPECT_EQ(progress_bar(0, 10, 10), " 0/10 [..........]");
  EXPECT_EQ(progress_bar(3, 10, 10), " 3/10 [==>.......]");
  EXPECT_EQ(progress_bar(10, 10, 10), "10/10 [==========]");
  EXPECT_EQ(progress_bar(1, 1500, 30), "   1/1500 [..............................]");
  EXPECT_EQ(progress_bar(750, 1500, 30), " 750/1500 [==============>...............]");
}

TEST(ProgressBar, FormatsTimesAndFiguresLikeKeras) {
  EXPECT_EQ(format_eta(0.4), "0s");
  EXPECT_EQ(format_eta(45.9), "45s");
  EXPECT_EQ(format_eta(95), "1:35");
  EXPECT_EQ(format_eta(3723), "1:02:03");
  EXPECT_EQ(format_per_step(2.2), "2s/step");
  EXPECT_EQ(format_per_step(0.012), "12ms/step");
  EXPECT_EQ(format_per_step(0.00085), "850us/step");
  EXPECT_EQ(format_figure(0.51234), "0.5123");
  EXPECT_EQ(format_figure(1.5), "1.5000");
  EXPECT_EQ(format_figure(0.0005), "5.0000e-04");
}

// A fake clock and a captured output.
struct Capture {
  double now = 100.0;
  std::string text;
  ProgressOptions options(ProgressMode mode) {
    ProgressOptions o;
    o.mode = mode;
    o.write = [this](const std::string& s) { text += s; };
    o.clock = [this] { return now; };
    o.redraw_seconds = 0.125;  // with steps of 0.0625 s: exact in binary
    return o;
  }
};

EpochLog log_of(int epoch, double seconds) {
  EpochLog e;
  e.epoch = epoch;
  e.loss = 0.51234;
  e.accuracy = 0.8;
  e.val_loss = 0.4;
  e.val_accuracy = 0.85;
  e.lr = 1e-3;
  e.seconds = seconds;
  return e;
}

// Drives a printer through one epoch of `steps` steps, 0.0625 s each on the clock, with
// running metrics at step `read_at`; the epoch's log says 0.05 s per step.
void run_epoch(ProgressPrinter& p, Capture& cap, int64_t steps, int64_t read_at) {
  History h;
  p.on_epoch_begin(1, 3, steps);
  for (int64_t s = 0; s < steps; ++s) {
    cap.now += 0.0625;
    Metrics m{0.7 * static_cast<double>(s + 1) * 32, (s + 1) * 20, (s + 1) * 32};
    p.on_batch_end(s, steps, s == read_at ? &m : nullptr);
  }
  h.epochs.push_back(log_of(1, 0.05 * static_cast<double>(steps)));
  p.on_epoch_end(EpochEnd{h.epochs.back(), h, 3, false, nullptr});
}

TEST(ProgressPrinter, BarModeRedrawsInPlaceThenPrintsTheEpochLine) {
  Capture cap;
  ProgressPrinter p(cap.options(ProgressMode::Bar));
  run_epoch(p, cap, 20, 9);
  const std::string& t = cap.text;
  EXPECT_EQ(t.rfind("Epoch 1/3\n", 0), 0u) << t;
  // Redraws in place with '\r', throttled to 0.125 s: the first step, then every other
  // one, plus the step whose figures were read and the last.
  const size_t redraws = static_cast<size_t>(std::count(t.begin(), t.end(), '\r'));
  EXPECT_GE(redraws, 10u) << t;
  EXPECT_LE(redraws, 13u) << t;
  EXPECT_NE(t.find("\r 1/20 [>"), std::string::npos) << t;
  EXPECT_NE(t.find("ETA: "), std::string::npos) << t;
  EXPECT_NE(t.find("elapsed"), std::string::npos) << t;
  // The figures appear once read (step 10: mean loss 0.7, accuracy 20/32).
  const size_t figures = t.find(" - loss: 0.7000 - accuracy: 0.6250");
  ASSERT_NE(figures, std::string::npos) << t;
  EXPECT_NE(t.rfind("\r10/20 [", figures), std::string::npos) << t;
  // Only one newline after the header: the final line, with the validation figures.
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 2) << t;
  const std::string last = t.substr(t.rfind('\r') + 1);
  EXPECT_EQ(last.rfind("20/20 [==============================] - 1s 50ms/step - loss: 0.5123 - "
                       "accuracy: 0.8000 - val_loss: 0.4000 - val_accuracy: 0.8500",
                       0),
            0u)
      << last;
  EXPECT_EQ(last.back(), '\n');
  EXPECT_EQ(last.find("lr:"), std::string::npos) << "no schedule, no lr";
}

TEST(ProgressPrinter, BarRedrawBlanksTheTailOfALongerPreviousLine) {
  Capture cap;
  ProgressPrinter p(cap.options(ProgressMode::Bar));
  p.on_epoch_begin(1, 1, 4);
  cap.text.clear();
  cap.now += 3000;
  p.on_batch_end(0, 4, nullptr);  // ETA 9000 s: "2:30:00"
  const std::string first = cap.text;
  cap.text.clear();
  cap.now += 1;
  p.on_batch_end(1, 4, nullptr);  // ETA 3001 s: "50:01", two characters shorter
  EXPECT_NE(first.find("ETA: 2:30:00"), std::string::npos) << first;
  EXPECT_NE(cap.text.find("ETA: 50:01  "), std::string::npos) << cap.text;
  EXPECT_EQ(cap.text.size(), first.size());
}

TEST(ProgressPrinter, LineModePrintsOneLinePerEpochAndNoCarriageReturn) {
  Capture cap;
  ProgressOptions o = cap.options(ProgressMode::Lines);
  o.show_lr = true;
  ProgressPrinter p(o);
  run_epoch(p, cap, 20, 9);
  EXPECT_EQ(cap.text,
            "Epoch 1/3 - 20 steps - 1.0s - 50ms/step - loss: 0.5123 - accuracy: 0.8000 - "
            "val_loss: 0.4000 - val_accuracy: 0.8500 - lr: 1.0000e-03\n");
}

TEST(ProgressPrinter, QuietPrintsNothing) {
  Capture cap;
  ProgressPrinter p(cap.options(ProgressMode::Quiet));
  run_epoch(p, cap, 20, 9);
  EXPECT_TRUE(cap.text.empty()) << cap.text;
}

TEST(HistoryCsv, HasKerasColumnsInSortedOrderAndPythonFloats) {
  History h;
  EpochLog a = log_of(1, 1.0), b = log_of(2, 1.0);
  a.loss = 0.25;
  a.accuracy = 1.0;
  b.loss = 0.1 + 0.2;  // 0.30000000000000004, as Python prints it
  b.lr = 1e-05;
  h.epochs = {a, b};
  EXPECT_EQ(history_csv(h, false),
            "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
            "0,1.0,0.25,0.85,0.4\r\n"
            "1,0.8,0.30000000000000004,0.85,0.4\r\n");
  EXPECT_EQ(history_csv(h, true),
            "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\r\n"
            "0,1.0,0.001,0.25,0.85,0.4\r\n"
            "1,0.8,1e-05,0.30000000000000004,0.85,0.4\r\n");
  h.epochs[0].val_loss.reset();
  h.epochs[0].val_accuracy.reset();
  h.epochs.resize(1);
  EXPECT_EQ(history_csv(h, false), "epoch,accuracy,loss\r\n0,1.0,0.25\r\n");
  EXPECT_EQ(python_float(2.0), "2.0");
  EXPECT_EQ(python_float(1e16), "1e+16");
  EXPECT_EQ(python_float(0.0001), "0.0001");
}

// fit with a CsvLogger: one row per epoch, matching the history fit returns.
TEST(HistoryCsv, FitWritesOneRowPerEpochMatchingTheHistory) {
  const test::ScratchDir dir("cnn_progress_csv");
  const std::string path = dir.file("h.csv");
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 3);
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 20;
  o.validation_split = 0.25;
  CsvLogger csv(path, false);
  std::vector<std::string> after_each;
  struct Peek : FitCallback {
    std::string path;
    std::vector<std::string>* out;
    void on_epoch_end(const EpochEnd&) override {
      std::ifstream in(path);
      out->emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  } peek;
  peek.path = path;
  peek.out = &after_each;
  o.callbacks = {&csv, &peek};
  const History h = t.fit(testing::quadrant_dataset(120, 5), o);
  ASSERT_EQ(after_each.size(), 3u);
  for (size_t e = 0; e < 3; ++e)  // written as each epoch ends
    EXPECT_EQ(std::count(after_each[e].begin(), after_each[e].end(), '\n'),
              static_cast<long>(e) + 2);
  EXPECT_EQ(after_each.back(), history_csv(h, false));
}

// How many times fit reads the running metrics mid-epoch: none without progress reads,
// about progress_reads_per_epoch with them (the time trigger is off here). The last step
// of an epoch always carries the epoch's figures, those of its history entry.
TEST(ProgressReads, FitReadsAFewTimesPerEpochOnlyWhenAsked) {
  struct Count : FitCallback {
    int reads = 0, batches = 0;
    std::vector<double> last_step_loss;
    void on_batch_end(int64_t step, int64_t steps, const Metrics* running) override {
      ++batches;
      if (step + 1 == steps) {
        EXPECT_NE(running, nullptr);
        if (running) last_step_loss.push_back(running->mean_loss());
      } else if (running) {
        ++reads;
        EXPECT_GT(running->count, 0);
      }
    }
  };
  const Dataset d = testing::quadrant_dataset(400, 6);
  for (const bool reads : {false, true}) {
    CpuBackend be;
    Model m = testing::small_stochastic_model();
    Trainer t(m, be, 3);
    FitOptions o;
    o.epochs = 2;
    o.batch_size = 4;  // 100 steps per epoch
    o.progress_reads = reads;
    o.progress_reads_per_epoch = 10;
    o.progress_read_seconds = 1e9;
    Count c;
    o.callbacks = {&c};
    const History h = t.fit(d, o);
    EXPECT_EQ(c.batches, 200);
    EXPECT_EQ(c.reads, reads ? 2 * 9 : 0);  // steps 10, 20, ..., 90 (100 is the epoch's end)
    ASSERT_EQ(c.last_step_loss.size(), 2u);
    for (size_t e = 0; e < 2; ++e) EXPECT_EQ(c.last_step_loss[e], h.epochs[e].loss);
  }
}

}  // namespace
}  // namespace cnn
