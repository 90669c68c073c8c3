#include "engine/train/early_stopping.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace cnn {

EarlyStopper::EarlyStopper(const EarlyStopping& config)
    : config_(config), maximize_(config.monitor.find("accuracy") != std::string::npos) {
  CNN_CHECK(config.monitor == "loss" || config.monitor == "accuracy" ||
                config.monitor == "val_loss" || config.monitor == "val_accuracy",
            ConfigError,
            "early stopping cannot monitor '{}': use val_loss, val_accuracy, loss or accuracy",
            config.monitor);
  CNN_CHECK(config.patience >= 0, ConfigError, "patience must be >= 0, got {}", config.patience);
  CNN_CHECK(config.min_delta >= 0.0, ConfigError, "min_delta must be >= 0, got {}",
            config.min_delta);
}

bool EarlyStopper::update(int epoch, double value) {
  // The first epoch always sets the baseline, as Keras's initial best of +/-inf does.
  improved_ = best_epoch_ == 0 ||
              (maximize_ ? value - config_.min_delta > best_ : value + config_.min_delta < best_);
  if (improved_) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
    return false;
  }
  return ++wait_ >= config_.patience;
}

void EarlyStopper::restore(const State& s) {
  CNN_CHECK(s.best_epoch >= 0 && s.wait >= 0, DataError,
            "early stopping state (best epoch {}, wait {}) is not valid", s.best_epoch, s.wait);
  best_ = s.best;
  best_epoch_ = s.best_epoch;
  wait_ = s.wait;
  improved_ = false;
}

}  // namespace cnn
