#include "engine/train/optimizer.h"

#include <fmt/format.h>

#include <cmath>

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

nlohmann::json optimizer_to_json(const OptimizerConfig& c) {
  return {{"kind", optimizer_name(c.kind)},
          {"learning_rate", c.lr()},
          {"momentum", c.momentum},
          {"nesterov", c.nesterov},
          {"beta1", c.beta1},
          {"beta2", c.beta2},
          {"rho", c.rho},
          {"epsilon", c.epsilon}};
}

OptimizerConfig optimizer_from_json(const nlohmann::json& j) {
  OptimizerConfig c;
  c.kind = parse_optimizer(j.at("kind").get<std::string>());
  c.learning_rate = j.at("learning_rate").get<float>();
  c.momentum = j.at("momentum").get<float>();
  c.nesterov = j.at("nesterov").get<bool>();
  c.beta1 = j.at("beta1").get<float>();
  c.beta2 = j.at("beta2").get<float>();
  c.rho = j.at("rho").get<float>();
  c.epsilon = j.at("epsilon").get<float>();
  return c;
}

Optimizer::Optimizer(const OptimizerConfig& config, Parameters& params, Backend& backend)
    : config_(config),
      params_(params),
      backend_(backend),
      lr_(config.lr()),
      momentum_(config.kind == OptimizerKind::Sgd    ? config.momentum
                : config.kind == OptimizerKind::Adam ? config.beta1
                                                     : 0.0f) {
  CNN_CHECK(config.lr() > 0.0f, ConfigError, "learning rate must be positive, got {}", config.lr());
  CNN_CHECK(config.momentum >= 0.0f && config.momentum < 1.0f, ConfigError,
            "SGD momentum must be in [0, 1), got {}", config.momentum);
  CNN_CHECK(config.kind != OptimizerKind::Adam || (config.beta1 >= 0.0f && config.beta1 < 1.0f &&
                                                   config.beta2 >= 0.0f && config.beta2 < 1.0f),
            ConfigError, "Adam's betas must be in [0, 1), got {} and {}", config.beta1,
            config.beta2);
  const Shape shape{std::max<int64_t>(params.values().numel(), 1)};  // laid out as the values
  const bool needs_slot1 = config.kind != OptimizerKind::Sgd || config.momentum > 0.0f;
  if (needs_slot1) slot1_ = backend.zeros(shape);
  if (config.kind == OptimizerKind::Adam) slot2_ = backend.zeros(shape);
}

void Optimizer::set_learning_rate(float lr) {
  CNN_CHECK(lr >= 0.0f && std::isfinite(lr), ConfigError,
            "learning rate must be finite and not negative, got {}", lr);
  lr_ = lr;
}

void Optimizer::set_momentum(float momentum) {
  CNN_CHECK(momentum >= 0.0f && momentum < 1.0f, ConfigError, "momentum must be in [0, 1), got {}",
            momentum);
  CNN_CHECK(config_.kind != OptimizerKind::Rmsprop, ConfigError,
            "rmsprop has no momentum to set (use sgd or adam, or keep the momentum fixed)");
  CNN_CHECK(config_.kind != OptimizerKind::Sgd || slot1_.defined() || momentum == 0.0f, ConfigError,
            "SGD without momentum keeps no velocity, so its momentum cannot be set: build it "
            "with a momentum > 0");
  momentum_ = momentum;
}

std::vector<Optimizer::Slot> Optimizer::slots() const {
  switch (config_.kind) {
    case OptimizerKind::Sgd:
      if (slot1_.defined()) return {{"momentum", slot1_}};
      return {};
    case OptimizerKind::Adam:
      return {{"m", slot1_}, {"v", slot2_}};
    case OptimizerKind::Rmsprop:
      return {{"velocity", slot1_}};
  }
  return {};
}

void Optimizer::step() {
  launch_update(nullptr);
  advance();
}

float Optimizer::next_rate() const {
  if (config_.kind != OptimizerKind::Adam) return lr_;
  // With a varying beta1 the bias correction uses the step's, as PyTorch's Adam does.
  return adam_step_size({lr_, momentum_, config_.beta2, config_.epsilon}, iterations_ + 1);
}

void Optimizer::launch_update(const cnnk::StepScalars* live) {
  const int64_t n = params_.values().numel();  // the gaps too: they stay zero
  if (n == 0) return;
  const cnnk::Live<float> rate =
      live ? cnnk::Live<float>(next_rate(), &live->rate) : cnnk::Live<float>(next_rate());
  const cnnk::Live<float> momentum =
      live ? cnnk::Live<float>(momentum_, &live->momentum) : cnnk::Live<float>(momentum_);
  float* w = params_.values().data();
  const float* g = params_.grads().data();
  switch (config_.kind) {
    case OptimizerKind::Sgd:
      backend_.sgd_update(n, {lr_, momentum_, config_.nesterov}, rate, momentum, w, g,
                          slot1_.defined() ? slot1_.data() : nullptr);
      break;
    case OptimizerKind::Adam:
      backend_.adam_update(n, {lr_, momentum_, config_.beta2, config_.epsilon}, rate, momentum, w,
                           g, slot1_.data(), slot2_.data());
      break;
    case OptimizerKind::Rmsprop:
      backend_.rmsprop_update(n, {lr_, config_.rho, config_.epsilon}, rate, w, g, slot1_.data());
      break;
  }
}

}  // namespace cnn
