// Keras's EarlyStopping as a small state machine, separate from the training loop so its
// rules can be tested on plain sequences of numbers.
#pragma once

#include <string>

namespace cnn {

struct EarlyStopping {
  bool enabled = false;
  std::string monitor = "val_loss";  // val_loss, val_accuracy, loss, accuracy
  int patience = 0;
  double min_delta = 0.0;
  bool restore_best_weights = true;
};

class EarlyStopper {
 public:
  explicit EarlyStopper(const EarlyStopping& config);
  // Feeds one epoch's monitored value. Returns true when training should stop: the value
  // has not improved on the best by more than min_delta for `patience` epochs in a row.
  bool update(int epoch, double value);
  // Whether the last update() was a new best (the weights to keep).
  bool improved() const { return improved_; }
  int best_epoch() const { return best_epoch_; }
  double best() const { return best_; }

  // What a checkpoint keeps, so a resumed run stops where the uninterrupted one would.
  struct State {
    double best = 0.0;
    int best_epoch = 0;  // 0: no epoch seen yet
    int wait = 0;
  };
  State state() const { return {best_, best_epoch_, wait_}; }
  void restore(const State& s);

 private:
  EarlyStopping config_;
  bool maximize_;
  double best_ = 0.0;
  int best_epoch_ = 0;
  int wait_ = 0;
  bool improved_ = false;
};

}  // namespace cnn
