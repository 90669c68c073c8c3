// Dense: x . W^T + b on [N, in], with an optional fused activation.
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"
#include "engine/ops/dense/dense.h"

namespace cnn::layers {
namespace {

class DenseLayer final : public Layer {
 public:
  DenseLayer(int units, Activation a, bool use_bias)
      : units_(units), act_(a), use_bias_(use_bias) {}
  std::string type() const override { return "Dense"; }
  std::string default_name() const override { return "dense"; }
  std::string op_family() const override { return "dense"; }
  bool fold_softmax() override { return act_.fold_softmax(); }
  nlohmann::ordered_json config() const override {
    return {{"units", units_},
            {"activation", activation_name(act_.declared())},
            {"use_bias", use_bias_}};
  }

  Shape infer(const std::vector<Shape>& in) override {
    CNN_CHECK(units_ > 0, ConfigError, "Dense needs a positive number of units, got {}", units_);
    CNN_CHECK(in[0].rank() == 1, ConfigError,
              "Dense expects a flat input per item, got {}; add a Flatten layer before it",
              in[0].str());
    in_ = in[0][0];
    detail::expect_weights_fit({units_, in_}, "Dense");
    return Shape{units_};
  }

  std::vector<ParamSpec> param_specs() const override {
    std::vector<ParamSpec> specs{
        {"kernel", Shape{units_, in_}, Init::GlorotUniform, true, in_, units_}};
    if (use_bias_) specs.push_back({"bias", Shape{units_}, Init::Zeros, true, 0, 0});
    return specs;
  }

  void prepare(Backend& be, int64_t max_batch) override {
    act_.prepare(be, Shape{max_batch, units_});
  }

  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    ctx.backend.dense_forward_fused(geometry(in[0]), in[0].data(), values_[0].data(), bias(values_),
                                    act_.kind(), out.data());
  }

  void backward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor>& din) override {
    // A frozen layer has no parameter gradients; it still passes the gradient on.
    const bool weights = grads_[0].defined();
    if (!weights && !din[0].defined()) return;
    const Tensor dz =
        act_.backward(ctx.backend, Shape{units_}, out, dout, weights ? bias(grads_) : nullptr);
    const auto g = geometry(in[0]);
    if (weights)
      ctx.backend.dense_backward_weights(g, in[0].data(), dz.data(), grads_[0].data(), nullptr);
    if (din[0].defined())
      ctx.backend.dense_backward_data(g, dz.data(), values_[0].data(), din[0].data());
  }

 private:
  cnnk::DenseGeometry geometry(const Tensor& x) const {
    return {detail::to_int(x.shape()[0]), detail::to_int(in_), units_};
  }
  float* bias(const std::vector<Tensor>& t) const { return use_bias_ ? t[1].data() : nullptr; }

  int units_;
  detail::FusedActivation act_;
  bool use_bias_;
  int64_t in_ = 0;
};

}  // namespace

LayerPtr dense(int units, Activation activation, bool use_bias) {
  return std::make_unique<DenseLayer>(units, activation, use_bias);
}

}  // namespace cnn::layers
