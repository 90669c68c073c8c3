#include "engine/train/optimizer.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace cnn {

float OptimizerConfig::lr() const {
  if (learning_rate >= 0.0f) return learning_rate;
  return kind == OptimizerKind::Sgd ? 0.01f : 1e-3f;
}

std::string OptimizerConfig::describe() const {
  switch (kind) {
    case OptimizerKind::Sgd:
      return fmt::format("sgd(lr={}, momentum={}, nesterov={})", lr(), momentum, nesterov);
    case OptimizerKind::Adam:
      return fmt::format("adam(lr={}, beta1={}, beta2={}, epsilon={})", lr(), beta1, beta2,
                         epsilon);
    case OptimizerKind::Rmsprop:
      return fmt::format("rmsprop(lr={}, rho={}, epsilon={})", lr(), rho, epsilon);
  }
  return "?";
}

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::Sgd;
  if (name == "adam") return OptimizerKind::Adam;
  if (name == "rmsprop") return OptimizerKind::Rmsprop;
  throw ConfigError(fmt::format("unknown optimizer '{}': expected sgd, adam or rmsprop", name));
}

std::string optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::Sgd:
      return "sgd";
    case OptimizerKind::Adam:
      return "adam";
    case OptimizerKind::Rmsprop:
      return "rmsprop";
  }
  return "?";
}

Optimizer::Optimizer(const OptimizerConfig& config, Parameters& params, Backend& backend)
    : config_(config), params_(params), backend_(backend) {
  CNN_CHECK(config.lr() > 0.0f, ConfigError, "learning rate must be positive, got {}", config.lr());
  CNN_CHECK(config.momentum >= 0.0f && config.momentum < 1.0f, ConfigError,
            "SGD momentum must be in [0, 1), got {}", config.momentum);
  const Shape shape{std::max<int64_t>(params.trainable_count(), 1)};
  const bool needs_slot1 = config.kind != OptimizerKind::Sgd || config.momentum > 0.0f;
  if (needs_slot1) slot1_ = backend.zeros(shape);
  if (config.kind == OptimizerKind::Adam) slot2_ = backend.zeros(shape);
}

void Optimizer::step() {
  ++iterations_;
  const int64_t n = params_.trainable_count();
  if (n == 0) return;
  float* w = params_.values().data();
  const float* g = params_.grads().data();
  switch (config_.kind) {
    case OptimizerKind::Sgd:
      backend_.sgd_update(n, {config_.lr(), config_.momentum, config_.nesterov}, w, g,
                          slot1_.defined() ? slot1_.data() : nullptr);
      break;
    case OptimizerKind::Adam:
      backend_.adam_update(n, {config_.lr(), config_.beta1, config_.beta2, config_.epsilon},
                           iterations_, w, g, slot1_.data(), slot2_.data());
      break;
    case OptimizerKind::Rmsprop:
      backend_.rmsprop_update(n, {config_.lr(), config_.rho, config_.epsilon}, w, g, slot1_.data());
      break;
  }
}

}  // namespace cnn
