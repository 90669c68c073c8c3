#include "engine/train/progress.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "engine/io/atomic_file.h"

namespace cnn {
namespace {

std::string figures(const EpochLog* log, const Metrics* running, bool show_lr) {
  std::string s;
  if (log) {
    s += " - loss: " + format_figure(log->loss) + " - accuracy: " + format_figure(log->accuracy);
    if (log->val_loss) s += " - val_loss: " + format_figure(*log->val_loss);
    if (log->val_accuracy) s += " - val_accuracy: " + format_figure(*log->val_accuracy);
    if (show_lr) s += fmt::format(" - lr: {:.4e}", log->lr);
  } else if (running && running->count > 0) {
    s += " - loss: " + format_figure(running->mean_loss()) +
         " - accuracy: " + format_figure(running->accuracy());
  }
  return s;
}

}  // namespace

std::string progress_bar(int64_t done, int64_t total, int width) {
  const int digits = static_cast<int>(std::to_string(total).size());
  std::string bar = fmt::format("{:>{}}/{} [", done, digits, total);
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int filled = static_cast<int>(width * frac);
  if (filled > 0) {
    bar += std::string(static_cast<size_t>(filled - 1), '=');
    bar += done < total ? '>' : '=';
  }
  bar += std::string(static_cast<size_t>(std::max(width - filled, 0)), '.');
  return bar + "]";
}

std::string format_eta(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds < 0 ? 0 : seconds);
  if (s > 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60);
  if (s > 60) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string format_per_step(double seconds) {
  if (seconds >= 1.0) return fmt::format("{:.0f}s/step", seconds);
  if (seconds >= 1e-3) return fmt::format("{:.0f}ms/step", seconds * 1e3);
  return fmt::format("{:.0f}us/step", seconds * 1e6);
}

std::string format_figure(double v) {
  return std::fabs(v) > 1e-3 ? fmt::format("{:.4f}", v) : fmt::format("{:.4e}", v);
}

ProgressPrinter::ProgressPrinter(ProgressOptions options) : opt_(std::move(options)) {
  if (!opt_.write)
    opt_.write = [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    };
  if (!opt_.clock)
    opt_.clock = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
}

void ProgressPrinter::emit(const std::string& text) {
  if (opt_.mode != ProgressMode::Quiet) opt_.write(text);
}

void ProgressPrinter::on_epoch_begin(int epoch, int epochs, int64_t steps) {
  epoch_start_ = opt_.clock();
  last_draw_ = -1.0;
  done_ = 0;
  steps_ = steps;
  drawn_width_ = 0;
  running_.reset();
  if (opt_.mode == ProgressMode::Bar) emit(fmt::format("Epoch {}/{}\n", epoch, epochs));
}

void ProgressPrinter::draw(int64_t done, int64_t steps) {
  const double elapsed = opt_.clock() - epoch_start_;
  std::string line = progress_bar(done, steps, opt_.bar_width);
  const double per_step = done > 0 ? elapsed / static_cast<double>(done) : 0.0;
  line += fmt::format(" - {} elapsed - ETA: {}", format_eta(elapsed),
                      format_eta(per_step * static_cast<double>(steps - done)));
  line += figures(nullptr, running_ ? &*running_ : nullptr, false);
  std::string out = "\r" + line;
  if (line.size() < drawn_width_) out += std::string(drawn_width_ - line.size(), ' ');
  drawn_width_ = line.size();
  emit(out);
  last_draw_ = opt_.clock();
}

void ProgressPrinter::on_batch_end(int64_t step, int64_t steps, const Metrics* running) {
  done_ = step + 1;
  steps_ = steps;
  if (running) running_ = *running;
  if (opt_.mode != ProgressMode::Bar) return;
  const bool due = last_draw_ < 0 || opt_.clock() - last_draw_ >= opt_.redraw_seconds;
  if (due || running != nullptr || done_ == steps) draw(done_, steps);
}

void ProgressPrinter::on_epoch_end(const EpochEnd& end) {
  const EpochLog& log = end.log;
  const double per_step = steps_ > 0 ? log.seconds / static_cast<double>(steps_) : 0.0;
  if (opt_.mode == ProgressMode::Bar) {
    std::string line = progress_bar(steps_, steps_, opt_.bar_width);
    line += fmt::format(" - {:.0f}s {}", log.seconds, format_per_step(per_step));
    line += figures(&log, nullptr, opt_.show_lr);
    std::string out = "\r" + line;
    if (line.size() < drawn_width_) out += std::string(drawn_width_ - line.size(), ' ');
    emit(out + "\n");
    drawn_width_ = 0;
  } else if (opt_.mode == ProgressMode::Lines) {
    emit(fmt::format("Epoch {}/{} - {} steps - {:.1f}s - {}{}\n", log.epoch, end.epochs, steps_,
                     log.seconds, format_per_step(per_step), figures(&log, nullptr, opt_.show_lr)));
  }
}

std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);  // shortest round trip, as Python's repr
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string history_csv(const History& history, bool include_lr) {
  const bool val = !history.epochs.empty() && history.epochs.front().val_loss.has_value();
  std::string out = "epoch,accuracy";
  if (include_lr) out += ",learning_rate";
  out += ",loss";
  if (val) out += ",val_accuracy,val_loss";
  out += "\r\n";
  for (const EpochLog& e : history.epochs) {
    out += fmt::format("{},{}", e.epoch - 1, python_float(e.accuracy));
    if (include_lr) out += "," + python_float(e.lr);
    out += "," + python_float(e.loss);
    if (val)
      out += "," + (e.val_accuracy ? python_float(*e.val_accuracy) : std::string("NA")) + "," +
             (e.val_loss ? python_float(*e.val_loss) : std::string("NA"));
    out += "\r\n";
  }
  return out;
}

CsvLogger::CsvLogger(std::string path, bool include_lr)
    : path_(std::move(path)), include_lr_(include_lr) {}

void CsvLogger::on_epoch_end(const EpochEnd& end) {
  write_file_atomic(path_, history_csv(end.history, include_lr_));
}

}  // namespace cnn
