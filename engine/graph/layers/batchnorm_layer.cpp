// BatchNormalization over channels (NCHW) or features ([N, F]). Frozen (trainable false),
// it runs in inference mode even in training, as Keras does since TF 2: the running
// statistics are used and left unchanged, and the layer is a fixed per-channel affine map.
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"
#include "engine/ops/batchnorm/batchnorm.h"

namespace cnn::layers {
namespace {

class BatchNormLayer final : public Layer {
 public:
  BatchNormLayer(float momentum, float epsilon) : momentum_(momentum), epsilon_(epsilon) {}
  std::string type() const override { return "BatchNormalization"; }
  std::string default_name() const override { return "batch_normalization"; }
  std::string op_family() const override { return "batchnorm"; }
  nlohmann::ordered_json config() const override {
    return {{"momentum", detail::config_float(momentum_)},
            {"epsilon", detail::config_float(epsilon_)}};
  }

  Shape infer(const std::vector<Shape>& in) override {
    CNN_CHECK(in[0].rank() == 1 || in[0].rank() == 3, ConfigError,
              "BatchNormalization expects (C, H, W) or (F,) per item, got {}", in[0].str());
    CNN_CHECK(momentum_ >= 0.0f && momentum_ <= 1.0f && epsilon_ > 0.0f, ConfigError,
              "BatchNormalization needs momentum in [0, 1] and epsilon > 0, got {} and {}",
              momentum_, epsilon_);
    item_ = in[0];
    return in[0];
  }

  std::vector<ParamSpec> param_specs() const override {
    const Shape c{item_[0]};
    return {{"gamma", c, Init::Ones, true, 0, 0},
            {"beta", c, Init::Zeros, true, 0, 0},
            {"moving_mean", c, Init::Zeros, false, 0, 0},
            {"moving_variance", c, Init::Ones, false, 0, 0}};
  }

  void prepare(Backend& be, int64_t max_batch) override {
    save_mean_ = be.empty(Shape{item_[0]});
    save_invstd_ = be.empty(Shape{item_[0]});
    dx_scratch_ = be.empty(detail::batched(max_batch, item_));
    zeros_ = be.zeros(Shape{item_[0]});
  }

  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    const auto g = geometry(in[0]);
    if (ctx.training && trainable())
      ctx.backend.batchnorm_forward_training(
          g, in[0].data(), values_[0].data(), values_[1].data(), momentum_, epsilon_,
          values_[2].data(), values_[3].data(), out.data(), save_mean_.data(), save_invstd_.data());
    else
      ctx.backend.batchnorm_forward_inference(g, in[0].data(), values_[0].data(), values_[1].data(),
                                              values_[2].data(), values_[3].data(), epsilon_,
                                              out.data());
  }

  void backward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor&, const Tensor& dout,
                const std::vector<Tensor>& din) override {
    if (!grads_[0].defined()) {
      // Frozen: y = gamma * (x - mean) / sqrt(var + eps) + beta with every factor fixed, so
      // dx = dy * gamma / sqrt(var + eps): the inference op applied to dy with a zero mean
      // and a zero beta.
      if (din[0].defined())
        ctx.backend.batchnorm_forward_inference(geometry(in[0]), dout.data(), values_[0].data(),
                                                zeros_.data(), zeros_.data(), values_[3].data(),
                                                epsilon_, din[0].data());
      return;
    }
    // The op computes dx with dgamma and dbeta; when no input gradient is wanted (the
    // layer sits on the model's input) it goes to scratch.
    const Tensor dx = din[0].defined() ? din[0] : dx_scratch_.slice_batch(0, in[0].shape()[0]);
    ctx.backend.batchnorm_backward(geometry(in[0]), in[0].data(), dout.data(), values_[0].data(),
                                   save_mean_.data(), save_invstd_.data(), epsilon_, dx.data(),
                                   grads_[0].data(), grads_[1].data());
  }

 private:
  cnnk::BatchNormGeometry geometry(const Tensor& x) const {
    cnnk::BatchNormGeometry g;
    g.n = detail::to_int(x.shape()[0]);
    g.c = detail::to_int(item_[0]);
    g.spatial = detail::to_int(item_.numel() / item_[0]);
    return g;
  }

  float momentum_, epsilon_;
  Shape item_;
  Tensor save_mean_, save_invstd_, dx_scratch_;
  Tensor zeros_;  // beta and mean of the frozen layer's backward
};

}  // namespace

LayerPtr batch_norm(float momentum, float epsilon) {
  return std::make_unique<BatchNormLayer>(momentum, epsilon);
}

}  // namespace cnn::layers
