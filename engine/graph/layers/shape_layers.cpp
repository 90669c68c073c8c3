// Flatten, Add and Concatenate: layers without parameters that move or combine tensors.
#include "engine/graph/layers.h"
#include "engine/graph/layers/layer_util.h"

namespace cnn::layers {
namespace {

// Flatten is a reshape: NCHW items are contiguous, so the values stay as they are. The
// executor normally gives the output the input's memory (is_view), and then nothing
// moves; where it cannot (the model's input, or a gradient that must go to scratch), the
// values are copied.
class FlattenLayer final : public Layer {
 public:
  std::string type() const override { return "Flatten"; }
  std::string default_name() const override { return "flatten"; }
  nlohmann::ordered_json config() const override { return nlohmann::ordered_json::object(); }
  bool is_view() const override { return true; }
  Shape infer(const std::vector<Shape>& in) override { return Shape{in[0].numel()}; }
  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    if (out.data() != in[0].data()) ctx.backend.copy(in[0], out);
  }
  void backward(RunContext& ctx, const std::vector<Tensor>&, const Tensor&, const Tensor& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined() && din[0].data() != dout.data()) ctx.backend.copy(dout, din[0]);
  }
};

class AddLayer final : public Layer {
 public:
  std::string type() const override { return "Add"; }
  std::string default_name() const override { return "add"; }
  nlohmann::ordered_json config() const override { return nlohmann::ordered_json::object(); }
  int arity() const override { return 0; }
  Shape infer(const std::vector<Shape>& in) override {
    for (size_t i = 1; i < in.size(); ++i)
      CNN_CHECK(in[i] == in[0], ConfigError,
                "Add needs inputs of one shape, got {} (input 0) and {} (input {})", in[0].str(),
                in[i].str(), i);
    return in[0];
  }
  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    ctx.backend.add(out.numel(), in[0].data(), in[1].data(), out.data());
    for (size_t i = 2; i < in.size(); ++i)
      ctx.backend.accumulate(out.numel(), in[i].data(), out.data());
  }
  void backward(RunContext& ctx, const std::vector<Tensor>&, const Tensor&, const Tensor& dout,
                const std::vector<Tensor>& din) override {
    for (const Tensor& d : din)
      if (d.defined()) ctx.backend.copy(dout, d);
  }
};

// Concatenate on the channel axis (axis 1 of NCHW; the feature axis of [N, F]).
class ConcatLayer final : public Layer {
 public:
  std::string type() const override { return "Concatenate"; }
  std::string default_name() const override { return "concatenate"; }
  // Keras's axis=-1: the channels of a channels-last image, which the engine stores as
  // axis 1 of NCHW; the features of a flat input.
  nlohmann::ordered_json config() const override { return {{"axis", -1}}; }
  int arity() const override { return 0; }
  Shape infer(const std::vector<Shape>& in) override {
    Shape out = in[0];
    channels_.clear();
    for (size_t i = 0; i < in.size(); ++i) {
      bool same_rest = in[i].rank() == in[0].rank();
      for (int d = 1; same_rest && d < in[0].rank(); ++d) same_rest = in[i][d] == in[0][d];
      CNN_CHECK(same_rest && in[i].rank() >= 1, ConfigError,
                "Concatenate on channels needs equal shapes apart from the channel axis, got {} "
                "(input 0) and {} (input {})",
                in[0].str(), in[i].str(), i);
      channels_.push_back(in[i][0]);
      if (i) out[0] += in[i][0];
    }
    spatial_ = in[0][0] ? in[0].numel() / in[0][0] : 1;
    return out;
  }
  void forward(RunContext& ctx, const std::vector<Tensor>& in, const Tensor& out) override {
    int64_t offset = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      ChannelCopyGeometry g{out.shape()[0], spatial_, channels_[i], 0,
                            total(),        offset,   channels_[i]};
      ctx.backend.channel_copy(g, in[i].data(), out.data());
      offset += channels_[i];
    }
  }
  void backward(RunContext& ctx, const std::vector<Tensor>&, const Tensor&, const Tensor& dout,
                const std::vector<Tensor>& din) override {
    int64_t offset = 0;
    for (size_t i = 0; i < din.size(); ++i) {
      ChannelCopyGeometry g{dout.shape()[0], spatial_, total(),     offset,
                            channels_[i],    0,        channels_[i]};
      if (din[i].defined()) ctx.backend.channel_copy(g, dout.data(), din[i].data());
      offset += channels_[i];
    }
  }

 private:
  int64_t total() const {
    int64_t t = 0;
    for (int64_t c : channels_) t += c;
    return t;
  }
  std::vector<int64_t> channels_;
  int64_t spatial_ = 1;
};

}  // namespace

LayerPtr flatten() { return std::make_unique<FlattenLayer>(); }
LayerPtr add() { return std::make_unique<AddLayer>(); }
LayerPtr concatenate() { return std::make_unique<ConcatLayer>(); }

}  // namespace cnn::layers
