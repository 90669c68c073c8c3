// Activation as a layer of its own (Keras's Activation / ReLU layers).
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"

namespace cnn::layers {
namespace {

class ActivationLayer final : public Layer {
 public:
  explicit ActivationLayer(Activation a) : act_(a), declared_(a) {}
  std::string type() const override { return "Activation"; }
  std::string default_name() const override { return "activation"; }
  nlohmann::ordered_json config() const override {
    return {{"activation", activation_name(declared_)}};
  }
  bool fold_softmax() override {
    if (act_ != Activation::Softmax) return false;
    act_ = Activation::Linear;
    return true;
  }
  Shape infer(const std::vector<Shape>& in) override {
    item_ = in[0];
    return in[0];
  }
  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    ctx.backend.activation_forward(act_, detail::act_geometry(out.shape()[0], item_), in[0].data(),
                                   out.data());
  }
  void backward(RunContext& ctx, const std::vector<Tensor>&, const Tensor& out, const Tensor& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined())
      ctx.backend.activation_backward(act_, detail::act_geometry(out.shape()[0], item_), out.data(),
                                      dout.data(), din[0].data());
  }

 private:
  Activation act_, declared_;  // declared_: before a final softmax was folded
  Shape item_;
};

}  // namespace

LayerPtr activation(Activation a) { return std::make_unique<ActivationLayer>(a); }

}  // namespace cnn::layers
