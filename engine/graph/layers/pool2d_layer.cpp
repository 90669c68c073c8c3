// MaxPooling2D and AveragePooling2D.
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"

namespace cnn::layers {
namespace {

class Pool2dLayer final : public Layer {
 public:
  explicit Pool2dLayer(const Pool2dParams& p) : p_(p) {}
  bool is_max() const { return p_.mode == cnnk::PoolMode::Max; }
  std::string type() const override { return is_max() ? "MaxPooling2D" : "AveragePooling2D"; }
  std::string default_name() const override {
    return is_max() ? "max_pooling2d" : "average_pooling2d";
  }
  std::string op_family() const override { return "pool2d"; }
  nlohmann::ordered_json config() const override {
    // Keras's strides=None means "the pool size".
    const int sh = p_.stride_h ? p_.stride_h : p_.pool_h,
              sw = p_.stride_w ? p_.stride_w : p_.pool_w;
    nlohmann::ordered_json strides = nullptr;
    if (sh != p_.pool_h || sw != p_.pool_w) strides = detail::config_pair(sh, sw);
    return {{"pool_size", detail::config_pair(p_.pool_h, p_.pool_w)},
            {"strides", strides},
            {"padding", detail::config_padding(p_.padding)}};
  }

  Shape infer(const std::vector<Shape>& in) override {
    detail::expect_rank(in[0], 3, type().c_str());
    item_in_ = in[0];
    const auto g = pool2d_geometry(p_, detail::batched(1, in[0]));
    return Shape{g.c, g.p, g.q};
  }

  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    ctx.backend.pool2d_forward(geometry(in[0]), in[0].data(), out.data());
  }

  void backward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor>& din) override {
    if (din[0].defined())
      ctx.backend.pool2d_backward(geometry(in[0]), in[0].data(), out.data(), dout.data(),
                                  din[0].data());
  }

 private:
  cnnk::Pool2dGeometry geometry(const Tensor& x) const {
    return pool2d_geometry(p_, detail::batched(x.shape()[0], item_in_));
  }

  Pool2dParams p_;
  Shape item_in_;
};

LayerPtr make_pool(cnnk::PoolMode mode, int pool, const std::string& padding, int stride) {
  Pool2dParams p;
  p.mode = mode;
  p.pool_h = p.pool_w = pool;
  p.stride_h = p.stride_w = stride;
  p.padding = parse_padding(padding);
  return pool2d(p);
}

}  // namespace

LayerPtr pool2d(const Pool2dParams& p) { return std::make_unique<Pool2dLayer>(p); }

LayerPtr max_pool2d(int pool, const std::string& padding, int stride) {
  return make_pool(cnnk::PoolMode::Max, pool, padding, stride);
}

LayerPtr avg_pool2d(int pool, const std::string& padding, int stride) {
  return make_pool(cnnk::PoolMode::Average, pool, padding, stride);
}

}  // namespace cnn::layers
