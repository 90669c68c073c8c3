// Dropout and SpatialDropout2D: inverted dropout in training, identity in inference.
#include "cnnk/step.h"
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"
#include "engine/ops/dropout/dropout.h"

namespace cnn::layers {
namespace {

class DropoutLayer final : public Layer {
 public:
  DropoutLayer(float rate, bool spatial) : rate_(rate), spatial_(spatial) {}
  std::string type() const override { return spatial_ ? "SpatialDropout2D" : "Dropout"; }
  std::string default_name() const override { return spatial_ ? "spatial_dropout2d" : "dropout"; }
  nlohmann::ordered_json config() const override { return {{"rate", detail::config_float(rate_)}}; }
  Shape infer(const std::vector<Shape>& in) override {
    CNN_CHECK(rate_ >= 0.0f && rate_ < 1.0f, ConfigError, "{} rate must be in [0, 1), got {}",
              type(), rate_);
    if (spatial_) detail::expect_rank(in[0], 3, "SpatialDropout2D");
    item_ = in[0];
    return in[0];
  }
  void prepare(Backend& be, int64_t max_batch) override {
    mask_ = be.empty(detail::batched(max_batch, item_));
  }
  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    if (!ctx.training || rate_ == 0.0f) {
      ctx.backend.copy(in[0], out);
      return;
    }
    // A fresh mask per step and per layer, all from the run's seed.
    const cnnk::StepSeed seed{ctx.seed, detail::stable_hash(name()), ctx.live_step()};
    ctx.backend.dropout_forward(geometry(out), rate_, seed, in[0].data(), out.data(), mask_.data());
  }
  void backward(RunContext& ctx, const std::vector<Tensor>&, const Tensor& out, const Tensor& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    if (rate_ == 0.0f) {
      ctx.backend.copy(dout, din[0]);
      return;
    }
    ctx.backend.dropout_backward(geometry(out), mask_.data(), dout.data(), din[0].data());
  }

 private:
  cnnk::DropoutGeometry geometry(const Tensor& t) const {
    cnnk::DropoutGeometry g;
    g.n = detail::to_int(t.shape()[0]);
    g.c = detail::to_int(item_.rank() >= 1 ? item_[0] : 1);
    g.spatial = detail::to_int(g.c ? item_.numel() / g.c : 1);
    g.per_channel = spatial_;
    return g;
  }

  float rate_;
  bool spatial_;
  Shape item_;
  Tensor mask_;
};

}  // namespace

LayerPtr dropout(float rate) { return std::make_unique<DropoutLayer>(rate, false); }
LayerPtr spatial_dropout2d(float rate) { return std::make_unique<DropoutLayer>(rate, true); }

}  // namespace cnn::layers
