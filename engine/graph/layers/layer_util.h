// Small helpers shared by the layer implementations.
#pragma once

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/backend/backend.h"
#include "engine/core/error.h"
#include "engine/core/shape.h"
#include "engine/ops/activation/activation.h"
#include "engine/ops/padding.h"

namespace cnn::detail {

// The full NCHW / [N, F] shape of a per-item shape at batch n.
inline Shape batched(int64_t n, const Shape& item) {
  std::vector<int64_t> d{n};
  d.insert(d.end(), item.dims().begin(), item.dims().end());
  return Shape(std::move(d));
}

inline void expect_rank(const Shape& s, int rank, const char* what) {
  CNN_CHECK(s.rank() == rank, ConfigError, "{} expects an input of rank {} per item, got {}", what,
            rank, s.str());
}

// FNV-1a: a hash of a layer name that is the same on every platform and run.
inline uint64_t stable_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

inline int to_int(int64_t v) { return static_cast<int>(v); }

// Refuses a weight tensor of more than 2^40 elements before its size is computed in
// int64 (the product of four large dimensions could overflow it).
inline void expect_weights_fit(std::initializer_list<int64_t> dims, const char* what) {
  double e = 1.0;
  for (int64_t d : dims) e *= static_cast<double>(d);
  CNN_CHECK(e <= 1099511627776.0, ConfigError, "{} would have {:.3g} weights, more than 2^40", what,
            e);
}

// Configuration values as the model file writes them. A float goes out as its shortest
// decimal (0.99, not 0.9900000095367432), which reads back to the same float.
inline double config_float(float v) {
  const std::string text = fmt::format("{}", v);
  double d = static_cast<double>(v);
  std::from_chars(text.data(), text.data() + text.size(), d);  // locale-independent
  return d;
}
// Keras's int-or-tuple arguments: 3 when square, [3, 5] when not.
inline nlohmann::ordered_json config_pair(int h, int w) {
  if (h == w) return h;
  return nlohmann::ordered_json::array({h, w});
}
// "valid", "same", or explicit [[top, bottom], [left, right]].
inline nlohmann::ordered_json config_padding(const Padding& p) {
  if (p.mode == PaddingMode::Valid) return "valid";
  if (p.mode == PaddingMode::Same) return "same";
  return nlohmann::ordered_json::array({nlohmann::ordered_json::array({p.top, p.bottom}),
                                        nlohmann::ordered_json::array({p.left, p.right})});
}

// [n, c, spatial] view of an activation's per-item shape (softmax runs over c).
inline ActivationGeometry act_geometry(int64_t n, const Shape& item) {
  ActivationGeometry g;
  g.n = n;
  g.c = item.rank() >= 1 ? item[0] : 1;
  g.spatial = g.c ? item.numel() / g.c : 1;
  return g;
}

}  // namespace cnn::detail

namespace cnn::detail {

// The activation fused into Conv2D and Dense: applied by the backend in the layer's
// forward (conv2d_forward_fused, dense_forward_fused), and undone in backward, with the
// bias gradient, into a scratch gradient (or none, when linear).
class FusedActivation {
 public:
  explicit FusedActivation(Activation a) : act_(a), declared_(a) {}
  Activation kind() const { return act_; }
  // As configured: softmax even after it was folded into the loss.
  Activation declared() const { return declared_; }
  bool fold_softmax() {
    if (act_ != Activation::Softmax) return false;
    act_ = Activation::Linear;
    return true;
  }
  void prepare(Backend& be, const Shape& full_out) {
    if (act_ != Activation::Linear) dz_ = be.empty(full_out);
  }
  // The gradient at the pre-activation (dout itself when linear), and the bias gradient
  // into db when it is not null: one pass over the gradient where the backend fuses them.
  Tensor backward(Backend& be, const Shape& item, const Tensor& out, const Tensor& dout,
                  float* db) const {
    if (act_ == Activation::Linear && !db) return dout;
    const Tensor dz = act_ == Activation::Linear ? dout : dz_.slice_batch(0, out.shape()[0]);
    be.bias_activation_backward(act_, act_geometry(out.shape()[0], item), out.data(), dout.data(),
                                dz.data(), db);
    return dz;
  }

 private:
  Activation act_, declared_;
  Tensor dz_;
};

}  // namespace cnn::detail
