// What fit shows and logs as it runs, as Keras does: a progress bar per epoch (Keras's
// Progbar, verbose=1) on a terminal, one line per epoch otherwise (verbose=2), or nothing
// (verbose=0); and the history as CSV (Keras's CSVLogger).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "engine/train/callbacks.h"

namespace cnn {

enum class ProgressMode {
  Bar,    // a bar redrawn in place ('\r'), then the epoch's line with validation figures
  Lines,  // one line per epoch: for logs, pipes and files
  Quiet,  // nothing
};

struct ProgressOptions {
  ProgressMode mode = ProgressMode::Lines;
  // Where the text goes (default: stdout, flushed after every write).
  std::function<void(const std::string&)> write;
  // Seconds on a monotonic clock (default: std::chrono::steady_clock); tests inject one.
  std::function<double()> clock;
  int bar_width = 30;           // Keras's
  double redraw_seconds = 0.1;  // the bar redraws at most this often, unless figures change
  bool show_lr = false;         // print the epoch's learning rate (when a schedule runs)
};

class ProgressPrinter : public FitCallback {
 public:
  explicit ProgressPrinter(ProgressOptions options);

  void on_epoch_begin(int epoch, int epochs, int64_t steps) override;
  void on_batch_end(int64_t step, int64_t steps, const Metrics* running) override;
  void on_epoch_end(const EpochEnd& end) override;

 private:
  void emit(const std::string& text);
  void draw(int64_t done, int64_t steps);

  ProgressOptions opt_;
  double epoch_start_ = 0.0, last_draw_ = -1.0;
  int64_t done_ = 0, steps_ = 0;
  size_t drawn_width_ = 0;  // the bar line on screen, to blank its tail on redraw
  std::optional<Metrics> running_;
};

// Keras's Progbar pieces, exposed for tests.
// " 37/150 [=======>......................]" (the step count right-aligned to the total's
// width, a bar of `width` with '>' at the head until done).
std::string progress_bar(int64_t done, int64_t total, int width);
// Keras's ETA: "45s", "1:35", "1:02:03".
std::string format_eta(double seconds);
// Keras's time per step: "3s/step", "12ms/step", "850us/step".
std::string format_per_step(double seconds);
// Keras's figure: "%.4f", or "%.4e" for magnitudes at most 1e-3.
std::string format_figure(double v);

// Keras's CSVLogger: after every epoch, the history so far as CSV, rewritten atomically.
// Columns: "epoch" (0-based, as Keras writes it), then the metrics sorted by name as
// Keras sorts its logs' keys: accuracy, learning_rate (when include_lr: Keras logs it when
// a learning-rate callback runs), loss, val_accuracy, val_loss (when validating). Values
// print as Python prints a float (shortest round trip).
class CsvLogger : public FitCallback {
 public:
  CsvLogger(std::string path, bool include_lr);
  void on_epoch_end(const EpochEnd& end) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool include_lr_;
};

// The CSV text of a history, as CsvLogger writes it: Keras's CSVLogger columns and its
// line ends (Python's csv module writes \r\n).
std::string history_csv(const History& history, bool include_lr);
// A double as Python's repr prints it: "0.25", "1.0", "1e-05", "nan".
std::string python_float(double v);

}  // namespace cnn
