// Learning-rate schedules. The optimizer's learning rate is set before every step from
// the schedule: step decay, cosine decay with linear warmup (Keras's CosineDecay), the
// one-cycle policy (PyTorch's OneCycleLR, momentum cycled too) and reduce-on-plateau
// (Keras's ReduceLROnPlateau). All but the last are pure functions of the step; the
// plateau schedule keeps a small state that a checkpoint stores.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace cnn {

enum class LrScheduleKind { Constant, Step, Cosine, OneCycle, Plateau };

struct LrScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::Constant;
  // step: lr = base * factor ^ floor(epoch / step_epochs), epoch counted from 0.
  int step_epochs = 10;
  // step: the decay per stage; plateau: the reduction (Keras's factor).
  double factor = 0.1;
  // cosine and one-cycle: the length of the schedule in epochs (0: the run's epochs). Past
  // it the learning rate stays at its final value. A resumed run keeps the original's.
  int schedule_epochs = 0;
  // cosine: a linear warmup from 0 to base over this many epochs (may be fractional),
  // then a cosine decay from base to min_lr over the rest.
  double warmup_epochs = 0.0;
  // cosine: the final learning rate; plateau: the floor (Keras's min_lr).
  double min_lr = 0.0;
  // one-cycle (PyTorch's defaults): from base / div_factor up to base (the peak) over the
  // first pct_start of the steps, then down to base / div_factor / final_div_factor, both
  // along cosine curves.
  double pct_start = 0.3, div_factor = 25.0, final_div_factor = 1e4;
  // one-cycle: the momentum (SGD's, or Adam's beta1) moves against the rate, from
  // max_momentum down to base_momentum at the peak and back up, along the same cosines.
  // RMSprop has no momentum to cycle (PyTorch's OneCycleLR would switch its momentum on).
  bool cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
  // plateau (Keras's defaults): monitor, patience, min_delta, cooldown.
  std::string monitor = "val_loss";
  int patience = 10;
  double min_delta = 1e-4;
  int cooldown = 0;

  // "cosine(warmup_epochs=1, min_lr=0, schedule_epochs=10)"
  std::string describe() const;
};

// "constant", "step", "cosine", "onecycle", "plateau"; anything else throws ConfigError.
LrScheduleKind parse_lr_schedule(const std::string& name);
std::string lr_schedule_name(LrScheduleKind kind);

nlohmann::json lr_schedule_to_json(const LrScheduleConfig& c);
LrScheduleConfig lr_schedule_from_json(const nlohmann::json& j);

// What the plateau schedule remembers between epochs (Keras's ReduceLROnPlateau fields).
struct PlateauState {
  double lr = 0.0;             // the current learning rate
  std::optional<double> best;  // none until the first epoch (Keras's +/-inf)
  int wait = 0;                // epochs without improvement
  int cooldown_counter = 0;    // epochs left in the cooldown
};

class LrSchedule {
 public:
  // base_lr: the optimizer's learning rate (one-cycle's peak); steps_per_epoch >= 1;
  // run_epochs: the run's total epochs, the length of cosine and one-cycle unless
  // config.schedule_epochs says otherwise. Throws ConfigError for bad parameters.
  LrSchedule(const LrScheduleConfig& config, double base_lr, int64_t steps_per_epoch,
             int run_epochs);

  // The learning rate of step `step` (0-based: the optimizer's iterations before it).
  double lr(int64_t step) const;
  // The momentum of step `step` when the schedule sets it (one-cycle with
  // cycle_momentum), else none: the optimizer keeps its own.
  std::optional<double> momentum(int64_t step) const;
  bool cycles_momentum() const {
    return config_.kind == LrScheduleKind::OneCycle && config_.cycle_momentum;
  }
  // Feeds an epoch's metrics: the plateau schedule may reduce the rate for the next
  // epoch. Returns true when it did. `value` is the monitored metric (absent: ignored,
  // as Keras warns and skips).
  bool on_epoch_end(std::optional<double> value);

  const LrScheduleConfig& config() const { return config_; }
  int schedule_epochs() const { return schedule_epochs_; }
  const PlateauState& plateau() const { return plateau_; }
  void set_plateau(const PlateauState& s) { plateau_ = s; }
  // The schedule's state as JSON (for checkpoints) and back.
  nlohmann::json state_json() const;
  void restore_state(const nlohmann::json& j);

 private:
  // One-cycle: where step `step` is, as PyTorch's OneCycleLR counts it.
  struct CyclePoint {
    bool rising;  // phase 1: the rate rises (the momentum falls)
    double pct;   // progress through the phase, in [0, 1]
  };
  CyclePoint cycle_point(int64_t step) const;

  LrScheduleConfig config_;
  double base_;
  int64_t steps_per_epoch_;
  int schedule_epochs_;
  bool maximize_ = false;  // plateau: the monitor is an accuracy
  PlateauState plateau_;
};

}  // namespace cnn
