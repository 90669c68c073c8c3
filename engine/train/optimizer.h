// Optimizers with Keras's defaults: SGD (lr 0.01, optional momentum and nesterov), Adam
// (lr 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7), RMSprop (lr 1e-3, rho 0.9,
// epsilon 1e-7). State lives beside the parameters on the backend, one buffer each. The
// learning rate and the momentum (SGD's, or Adam's beta1) can change before any step
// (schedules); the state (moments, step count) can be read and restored, so a checkpoint
// resumes exactly.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/parameters.h"

namespace cnn {

enum class OptimizerKind { Sgd, Adam, Rmsprop };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::Adam;
  float learning_rate = -1.0f;         // < 0: the kind's Keras default
  float momentum = 0.0f;               // SGD
  bool nesterov = false;               // SGD
  float beta1 = 0.9f, beta2 = 0.999f;  // Adam
  float rho = 0.9f;                    // RMSprop
  float epsilon = 1e-7f;               // Adam, RMSprop

  float lr() const;
  std::string describe() const;  // "adam(lr=0.001, ...)"
};

// "sgd", "adam", "rmsprop"; anything else throws ConfigError.
OptimizerKind parse_optimizer(const std::string& name);
std::string optimizer_name(OptimizerKind kind);

nlohmann::json optimizer_to_json(const OptimizerConfig& c);
OptimizerConfig optimizer_from_json(const nlohmann::json& j);

class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, Parameters& params, Backend& backend);
  // Applies the gradients in params.grads() to params.values(): one backend call.
  void step();
  // step() in two halves, for a step captured into a CUDA graph (whose host code runs once,
  // at capture): launch_update only launches, reading the rate and the momentum from
  // live->rate and live->momentum when `live` is given (the caller stores step_scalars()
  // there first); advance counts the step.
  void launch_update(const cnnk::StepScalars* live);
  void advance() { ++iterations_; }
  // What the next step's launches read (cnnk/step.h), for a batch whose sample rows start
  // at `rows`: the step count, next_rate() and momentum().
  cnnk::StepScalars step_scalars(const int32_t* rows) const {
    return {rows, iterations_, next_rate(), momentum_};
  }
  // The rate the next update applies: the learning rate, or for Adam its bias-corrected
  // step size at step iterations() + 1.
  float next_rate() const;
  int64_t iterations() const { return iterations_; }
  void set_iterations(int64_t n) { iterations_ = n; }
  const OptimizerConfig& config() const { return config_; }
  // The learning rate of the next steps (starts at config().lr()).
  float learning_rate() const { return lr_; }
  void set_learning_rate(float lr);
  // The momentum of the next steps: SGD's momentum or Adam's beta1 (starts at the
  // config's); 0 for RMSprop, which has none. Setting it needs a momentum to set: SGD
  // built with momentum > 0 (so that it keeps a velocity; without, only 0), or Adam.
  float momentum() const { return momentum_; }
  void set_momentum(float momentum);

  // The state buffers, laid out as params.values(): Keras's names for them ("m" and "v"
  // for Adam, "momentum" for SGD with momentum, "velocity" for RMSprop). Plain SGD has
  // none.
  struct Slot {
    std::string name;
    Tensor tensor;
  };
  std::vector<Slot> slots() const;

 private:
  OptimizerConfig config_;
  Parameters& params_;
  Backend& backend_;
  Tensor slot1_, slot2_;  // velocity / first moment, second moment
  int64_t iterations_ = 0;
  float lr_, momentum_;
};

}  // namespace cnn
