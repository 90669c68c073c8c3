// A layer of the graph: Keras-level configuration, shape inference at build time,
// parameter declarations, and forward/backward through the Backend interface.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/core/shape.h"
#include "engine/core/tensor.h"

namespace cnn {

enum class Init { GlorotUniform, Zeros, Ones };

// One parameter tensor of a layer. Non-trainable ones (batch-norm running statistics)
// have no gradient and are not touched by the optimizer.
struct ParamSpec {
  std::string name;  // "kernel", "bias", "gamma", "moving_mean", ...
  Shape shape;
  Init init = Init::Zeros;
  bool trainable = true;
  int64_t fan_in = 0, fan_out = 0;  // for glorot_uniform
};

// What a pass needs besides its tensors.
struct RunContext {
  Backend& backend;
  bool training = false;
  uint64_t seed = 0;  // the run's seed (dropout masks derive from it)
  int64_t step = 0;   // the optimizer step, so each step draws new masks
  // When set, the step is read from here when the kernels run (a captured step: see
  // cnnk/step.h), and `step` is only its value at capture time.
  const cnnk::StepScalars* live = nullptr;
  cnnk::Live<int64_t> live_step() const {
    return live ? cnnk::Live<int64_t>(step, &live->iteration) : cnnk::Live<int64_t>(step);
  }
};

class Layer {
 public:
  virtual ~Layer() = default;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  virtual std::string type() const = 0;          // "Conv2D", as Keras prints it
  virtual std::string default_name() const = 0;  // "conv2d": the base of automatic names
  // Number of inputs the layer takes; 0 means two or more (Add, Concatenate).
  virtual int arity() const { return 1; }
  // The layer's Keras configuration: every key of the model file's layer object except
  // "type", "name", "inputs" and "trainable", defaults included, as declared (a final
  // softmax folded into the loss still reads "softmax"). model_file.h reads it back.
  virtual nlohmann::ordered_json config() const = 0;

  // Keras's `trainable`: a frozen layer's parameters are non-trainable (they live in the
  // non-trainable buffer, get no gradient and no optimizer update), and a frozen
  // BatchNormalization runs in inference mode, as in Keras. Change it through
  // Model::set_trainable, before the model's Parameters are created.
  bool trainable() const { return trainable_; }
  void set_trainable(bool trainable) { trainable_ = trainable; }

  // Shape inference on per-item shapes (no batch dimension). Throws ConfigError with the
  // shapes when the configuration is impossible; the graph adds the layer's name.
  virtual Shape infer(const std::vector<Shape>& inputs) = 0;
  virtual std::vector<ParamSpec> param_specs() const { return {}; }
  // The final layer's softmax is folded into the loss; the layer then outputs logits.
  virtual bool fold_softmax() { return false; }
  // Names the implementation that runs (e.g. "openblas"), or "" for none.
  virtual std::string op_family() const { return ""; }
  // A view (Flatten): the output holds the input's values unchanged, in the same order,
  // and the input gradient equals the output gradient. The executor may then give the
  // output the input's memory (and the output gradient the input gradient's), so the
  // layer must accept out and in[0] (din[0] and dout) sharing storage and move nothing.
  virtual bool is_view() const { return false; }

  // Parameter views, in param_specs() order; grads are undefined for non-trainable ones
  // (running statistics, and every parameter of a frozen layer): backward then skips
  // that gradient.
  void bind(std::vector<Tensor> values, std::vector<Tensor> grads) {
    values_ = std::move(values);
    grads_ = std::move(grads);
  }
  // Allocates the layer's scratch (saved statistics, masks) for up to max_batch items.
  virtual void prepare(Backend& /*backend*/, int64_t /*max_batch*/) {}

  // out and in share the batch size n = in[0].shape()[0]. forward assigns out; backward
  // assigns din[i] (undefined din[i]: that gradient is not needed) and the layer's
  // parameter gradients that are defined.
  virtual void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) = 0;
  virtual void backward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out,
                        const Tensor& dout, const std::vector<Tensor>& din) = 0;

 protected:
  std::vector<Tensor> values_, grads_;

 private:
  std::string name_;
  bool trainable_ = true;
};

using LayerPtr = std::unique_ptr<Layer>;

}  // namespace cnn
