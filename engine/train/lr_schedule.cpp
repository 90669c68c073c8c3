#include "engine/train/lr_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"
#include "engine/io/json_whole.h"

namespace cnn {
namespace {

constexpr double kPi = 3.14159265358979323846;

// PyTorch's _annealing_cos: from `start` at pct 0 to `end` at pct 1 along half a cosine.
double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}

bool is_metric(const std::string& m) {
  return m == "loss" || m == "accuracy" || m == "val_loss" || m == "val_accuracy";
}

}  // namespace

LrScheduleKind parse_lr_schedule(const std::string& name) {
  if (name == "constant") return LrScheduleKind::Constant;
  if (name == "step") return LrScheduleKind::Step;
  if (name == "cosine") return LrScheduleKind::Cosine;
  if (name == "onecycle") return LrScheduleKind::OneCycle;
  if (name == "plateau") return LrScheduleKind::Plateau;
  throw ConfigError(fmt::format(
      "unknown learning-rate schedule '{}': expected constant, step, cosine, onecycle or plateau",
      name));
}

std::string lr_schedule_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::Constant:
      return "constant";
    case LrScheduleKind::Step:
      return "step";
    case LrScheduleKind::Cosine:
      return "cosine";
    case LrScheduleKind::OneCycle:
      return "onecycle";
    case LrScheduleKind::Plateau:
      return "plateau";
  }
  return "?";
}

std::string LrScheduleConfig::describe() const {
  switch (kind) {
    case LrScheduleKind::Constant:
      return "constant";
    case LrScheduleKind::Step:
      return fmt::format("step(every {} epochs, factor={})", step_epochs, factor);
    case LrScheduleKind::Cosine:
      return fmt::format("cosine(warmup_epochs={}, min_lr={}, schedule_epochs={})", warmup_epochs,
                         min_lr, schedule_epochs);
    case LrScheduleKind::OneCycle: {
      const std::string momentum =
          cycle_momentum
              ? fmt::format("momentum {} -> {} -> {}", max_momentum, base_momentum, max_momentum)
              : std::string("momentum not cycled");
      return fmt::format(
          "onecycle(pct_start={}, div_factor={}, final_div_factor={}, "
          "schedule_epochs={}, {})",
          pct_start, div_factor, final_div_factor, schedule_epochs, momentum);
    }
    case LrScheduleKind::Plateau:
      return fmt::format(
          "plateau(monitor={}, factor={}, patience={}, min_delta={}, cooldown={}, "
          "min_lr={})",
          monitor, factor, patience, min_delta, cooldown, min_lr);
  }
  return "?";
}

nlohmann::json lr_schedule_to_json(const LrScheduleConfig& c) {
  return {{"kind", lr_schedule_name(c.kind)},
          {"step_epochs", c.step_epochs},
          {"factor", c.factor},
          {"schedule_epochs", c.schedule_epochs},
          {"warmup_epochs", c.warmup_epochs},
          {"min_lr", c.min_lr},
          {"pct_start", c.pct_start},
          {"div_factor", c.div_factor},
          {"final_div_factor", c.final_div_factor},
          {"cycle_momentum", c.cycle_momentum},
          {"base_momentum", c.base_momentum},
          {"max_momentum", c.max_momentum},
          {"monitor", c.monitor},
          {"patience", c.patience},
          {"min_delta", c.min_delta},
          {"cooldown", c.cooldown}};
}

LrScheduleConfig lr_schedule_from_json(const nlohmann::json& j) {
  LrScheduleConfig c;
  c.kind = parse_lr_schedule(j.at("kind").get<std::string>());
  c.step_epochs = json_whole<int>(j.at("step_epochs"));
  c.factor = j.at("factor").get<double>();
  c.schedule_epochs = json_whole<int>(j.at("schedule_epochs"));
  c.warmup_epochs = j.at("warmup_epochs").get<double>();
  c.min_lr = j.at("min_lr").get<double>();
  c.pct_start = j.at("pct_start").get<double>();
  c.div_factor = j.at("div_factor").get<double>();
  c.final_div_factor = j.at("final_div_factor").get<double>();
  // Runs saved before one-cycle cycled the momentum resume as they ran: without it.
  c.cycle_momentum = j.contains("cycle_momentum") && j.at("cycle_momentum").get<bool>();
  if (j.contains("base_momentum")) c.base_momentum = j.at("base_momentum").get<double>();
  if (j.contains("max_momentum")) c.max_momentum = j.at("max_momentum").get<double>();
  c.monitor = j.at("monitor").get<std::string>();
  c.patience = json_whole<int>(j.at("patience"));
  c.min_delta = j.at("min_delta").get<double>();
  c.cooldown = json_whole<int>(j.at("cooldown"));
  return c;
}

LrSchedule::LrSchedule(const LrScheduleConfig& config, double base_lr, int64_t steps_per_epoch,
                       int run_epochs)
    : config_(config),
      base_(base_lr),
      steps_per_epoch_(steps_per_epoch),
      schedule_epochs_(config.schedule_epochs > 0 ? config.schedule_epochs : run_epochs) {
  CNN_CHECK(base_lr > 0.0 && std::isfinite(base_lr), ConfigError,
            "learning rate must be positive, got {}", base_lr);
  CNN_CHECK(steps_per_epoch >= 1, ConfigError, "an epoch needs at least one step");
  CNN_CHECK(schedule_epochs_ >= 1, ConfigError, "the schedule must last at least one epoch");
  switch (config.kind) {
    case LrScheduleKind::Constant:
      break;
    case LrScheduleKind::Step:
      CNN_CHECK(config.step_epochs >= 1, ConfigError,
                "step decay: the step must be at least one epoch, got {}", config.step_epochs);
      CNN_CHECK(config.factor > 0.0 && config.factor <= 1.0, ConfigError,
                "step decay: the factor must be in (0, 1], got {}", config.factor);
      break;
    case LrScheduleKind::Cosine:
      CNN_CHECK(config.warmup_epochs >= 0.0 && config.warmup_epochs < schedule_epochs_, ConfigError,
                "cosine: the warmup ({} epochs) must be shorter than the schedule ({})",
                config.warmup_epochs, schedule_epochs_);
      CNN_CHECK(config.min_lr >= 0.0 && config.min_lr <= base_lr, ConfigError,
                "cosine: the final learning rate {} must be in [0, the learning rate {}]",
                config.min_lr, base_lr);
      break;
    case LrScheduleKind::OneCycle:
      CNN_CHECK(config.pct_start > 0.0 && config.pct_start < 1.0, ConfigError,
                "one-cycle: pct_start must be in (0, 1), got {}", config.pct_start);
      CNN_CHECK(config.div_factor >= 1.0 && config.final_div_factor >= 1.0, ConfigError,
                "one-cycle: the div factors must be at least 1, got {} and {}", config.div_factor,
                config.final_div_factor);
      CNN_CHECK(
          !config.cycle_momentum || (config.base_momentum >= 0.0 && config.base_momentum < 1.0 &&
                                     config.max_momentum >= 0.0 && config.max_momentum < 1.0),
          ConfigError, "one-cycle: the momenta must be in [0, 1), got {} and {}",
          config.base_momentum, config.max_momentum);
      break;
    case LrScheduleKind::Plateau:
      // Keras refuses a factor >= 1 ("does not support a factor >= 1.0").
      CNN_CHECK(config.factor > 0.0 && config.factor < 1.0, ConfigError,
                "reduce on plateau: the factor must be in (0, 1), got {}", config.factor);
      CNN_CHECK(is_metric(config.monitor), ConfigError,
                "reduce on plateau cannot monitor '{}': use val_loss, val_accuracy, loss or "
                "accuracy",
                config.monitor);
      CNN_CHECK(config.patience >= 0 && config.cooldown >= 0 && config.min_delta >= 0.0 &&
                    config.min_lr >= 0.0,
                ConfigError,
                "reduce on plateau: patience, cooldown, min_delta and min_lr must "
                "not be negative");
      break;
  }
  // Keras's mode "auto": a monitor with "acc" in its name is maximized.
  maximize_ = config.monitor.find("acc") != std::string::npos;
  // The optimizer holds its rate in float32, as Keras's variable does.
  plateau_.lr = static_cast<double>(static_cast<float>(base_lr));
}

double LrSchedule::lr(int64_t step) const {
  const double s = static_cast<double>(step);
  const double total =
      static_cast<double>(schedule_epochs_) * static_cast<double>(steps_per_epoch_);
  switch (config_.kind) {
    case LrScheduleKind::Constant:
      return base_;
    case LrScheduleKind::Step: {
      const int64_t epoch = step / steps_per_epoch_;
      return base_ * std::pow(config_.factor, static_cast<double>(epoch / config_.step_epochs));
    }
    case LrScheduleKind::Cosine: {
      // Keras's CosineDecay(initial_learning_rate=0, warmup_target=base, warmup_steps,
      // decay_steps = total - warmup_steps, alpha = min_lr / base).
      const double warmup =
          std::round(config_.warmup_epochs * static_cast<double>(steps_per_epoch_));
      if (s < warmup) return base_ * s / warmup;
      const double decay = std::max(total - warmup, 1.0);
      const double t = std::min(s - warmup, decay);
      const double cosine = 0.5 * (1.0 + std::cos(kPi * t / decay));
      return config_.min_lr + (base_ - config_.min_lr) * cosine;
    }
    case LrScheduleKind::OneCycle: {
      const double initial = base_ / config_.div_factor;
      const double final_lr = initial / config_.final_div_factor;
      const CyclePoint p = cycle_point(step);
      return p.rising ? anneal_cos(initial, base_, p.pct) : anneal_cos(base_, final_lr, p.pct);
    }
    case LrScheduleKind::Plateau:
      return plateau_.lr;
  }
  return base_;
}

// PyTorch's OneCycleLR with two phases: phase 1 ends at step pct_start * total - 1, phase 2
// at total - 1; past it the values stay at their ends.
LrSchedule::CyclePoint LrSchedule::cycle_point(int64_t step) const {
  const double s = static_cast<double>(step);
  const double total =
      static_cast<double>(schedule_epochs_) * static_cast<double>(steps_per_epoch_);
  const double end1 = config_.pct_start * total - 1.0;
  const double end2 = total - 1.0;
  if (s <= end1) return {true, end1 > 0.0 ? s / end1 : 1.0};
  const double span = end2 - end1;
  return {false, span > 0.0 ? std::min((s - end1) / span, 1.0) : 1.0};
}

std::optional<double> LrSchedule::momentum(int64_t step) const {
  if (!cycles_momentum()) return std::nullopt;
  const CyclePoint p = cycle_point(step);
  return p.rising ? anneal_cos(config_.max_momentum, config_.base_momentum, p.pct)
                  : anneal_cos(config_.base_momentum, config_.max_momentum, p.pct);
}

bool LrSchedule::on_epoch_end(std::optional<double> value) {
  if (config_.kind != LrScheduleKind::Plateau || !value) return false;
  // Keras's ReduceLROnPlateau.on_epoch_end, step by step.
  PlateauState& p = plateau_;
  if (p.cooldown_counter > 0) {
    --p.cooldown_counter;
    p.wait = 0;
  }
  const double current = *value;
  const bool better = !p.best || (maximize_ ? current > *p.best + config_.min_delta
                                            : current < *p.best - config_.min_delta);
  if (better) {
    p.best = current;
    p.wait = 0;
    return false;
  }
  if (p.cooldown_counter > 0) return false;
  if (++p.wait < config_.patience) return false;
  const double old_lr = p.lr;
  if (!(old_lr > static_cast<double>(static_cast<float>(config_.min_lr)))) return false;
  const double new_lr = std::max(old_lr * config_.factor, config_.min_lr);
  p.lr = static_cast<double>(static_cast<float>(new_lr));
  p.cooldown_counter = config_.cooldown;
  p.wait = 0;
  return true;
}

nlohmann::json LrSchedule::state_json() const {
  nlohmann::json j{{"lr", plateau_.lr},
                   {"best", nullptr},
                   {"wait", plateau_.wait},
                   {"cooldown_counter", plateau_.cooldown_counter}};
  if (plateau_.best) j["best"] = *plateau_.best;
  return j;
}

void LrSchedule::restore_state(const nlohmann::json& j) {
  PlateauState p;
  try {
    p.lr = j.at("lr").get<double>();
    if (!j.at("best").is_null()) p.best = j.at("best").get<double>();
    p.wait = json_whole<int>(j.at("wait"));
    p.cooldown_counter = json_whole<int>(j.at("cooldown_counter"));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("the learning-rate schedule's state is malformed ({})", e.what()));
  }
  CNN_CHECK(p.lr > 0.0 && std::isfinite(p.lr) && p.wait >= 0 && p.cooldown_counter >= 0, DataError,
            "the learning-rate schedule's state is not valid: {}", j.dump());
  plateau_ = p;
}

}  // namespace cnn
