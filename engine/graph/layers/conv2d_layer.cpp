// Conv2D: convolution + bias, with an optional activation fused into its forward.
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"

namespace cnn::layers {
namespace {

class Conv2dLayer final : public Layer {
 public:
  Conv2dLayer(const Conv2dParams& p, Activation a) : p_(p), act_(a) {}
  std::string type() const override { return "Conv2D"; }
  std::string default_name() const override { return "conv2d"; }
  std::string op_family() const override { return "conv2d"; }
  bool fold_softmax() override { return act_.fold_softmax(); }
  nlohmann::ordered_json config() const override {
    return {{"filters", p_.filters},
            {"kernel_size", detail::config_pair(p_.kernel_h, p_.kernel_w)},
            {"strides", detail::config_pair(p_.stride_h, p_.stride_w)},
            {"padding", detail::config_padding(p_.padding)},
            {"dilation_rate", detail::config_pair(p_.dilation_h, p_.dilation_w)},
            {"activation", activation_name(act_.declared())},
            {"use_bias", p_.use_bias}};
  }

  Shape infer(const std::vector<Shape>& in) override {
    detail::expect_rank(in[0], 3, "Conv2D");
    item_in_ = in[0];
    detail::expect_weights_fit({p_.filters, in[0][0], p_.kernel_h, p_.kernel_w}, "Conv2D");
    const cnnk::Conv2dGeometry g = conv2d_geometry(p_, detail::batched(1, in[0]));
    item_out_ = Shape{g.k, g.p, g.q};
    return item_out_;
  }

  std::vector<ParamSpec> param_specs() const override {
    const int64_t c = item_in_[0], rs = int64_t(p_.kernel_h) * p_.kernel_w;
    std::vector<ParamSpec> specs{{"kernel", Shape{p_.filters, c, p_.kernel_h, p_.kernel_w},
                                  Init::GlorotUniform, true, c * rs, p_.filters * rs}};
    if (p_.use_bias) specs.push_back({"bias", Shape{p_.filters}, Init::Zeros, true, 0, 0});
    return specs;
  }

  void prepare(Backend& be, int64_t max_batch) override {
    act_.prepare(be, detail::batched(max_batch, item_out_));
  }

  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    // The activation rides in the convolution's epilogue where the backend can (the
    // native kernels): one pass over the output instead of a convolution and an in-place
    // activation pass. Backward is unchanged: it starts from the stored output.
    const auto g = geometry(in[0].shape()[0]);
    ctx.backend.conv2d_forward_fused(g, in[0].data(), values_[0].data(), bias(values_), act_.kind(),
                                     out.data());
  }

  void backward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor>& din) override {
    // A frozen layer has no parameter gradients; it still passes the gradient on.
    const bool weights = grads_[0].defined();
    if (!weights && !din[0].defined()) return;
    const auto g = geometry(in[0].shape()[0]);
    // The bias gradient comes with the activation's backward (one pass over the gradient).
    const Tensor dz =
        act_.backward(ctx.backend, item_out_, out, dout, weights ? bias(grads_) : nullptr);
    if (weights)
      ctx.backend.conv2d_backward_filter(g, in[0].data(), dz.data(), grads_[0].data(), nullptr);
    if (din[0].defined())
      ctx.backend.conv2d_backward_data(g, dz.data(), values_[0].data(), din[0].data());
  }

 private:
  cnnk::Conv2dGeometry geometry(int64_t n) const {
    return conv2d_geometry(p_, detail::batched(n, item_in_));
  }
  float* bias(const std::vector<Tensor>& t) const { return p_.use_bias ? t[1].data() : nullptr; }

  Conv2dParams p_;
  detail::FusedActivation act_;
  Shape item_in_, item_out_;
};

}  // namespace

LayerPtr conv2d(const Conv2dParams& p, Activation activation) {
  return std::make_unique<Conv2dLayer>(p, activation);
}

LayerPtr conv2d(int filters, int kernel, const std::string& padding, Activation activation,
                int stride) {
  Conv2dParams p;
  p.filters = filters;
  p.kernel_h = p.kernel_w = kernel;
  p.stride_h = p.stride_w = stride;
  p.padding = parse_padding(padding);
  return conv2d(p, activation);
}

Padding parse_padding(const std::string& name) {
  if (name == "valid") return Padding::valid();
  if (name == "same") return Padding::same();
  throw ConfigError(fmt::format("unknown padding '{}': expected \"valid\" or \"same\"", name));
}

}  // namespace cnn::layers
