// Optimizer updates reference: Keras's formulas, elementwise in float, in index order.
#include <cmath>
#include <cstdint>

#include "engine/core/error.h"
#include "engine/ops/optim/optim_update.h"

namespace cnn {

float adam_step_size(const AdamHyper& h, int64_t step) {
  CNN_CHECK(step >= 1, Error, "adam_update: step must count from 1, got {}", step);
  const double t = static_cast<double>(step);
  const double b1_t = std::pow(static_cast<double>(h.beta1), t);
  const double b2_t = std::pow(static_cast<double>(h.beta2), t);
  return static_cast<float>(static_cast<double>(h.lr) * std::sqrt(1.0 - b2_t) / (1.0 - b1_t));
}

namespace ref {

void sgd_update(int64_t n, const SgdHyper& h, float* w, const float* g, float* velocity) {
  if (velocity == nullptr) {
    for (int64_t i = 0; i < n; ++i) w[i] -= h.lr * g[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    velocity[i] = h.momentum * velocity[i] - h.lr * g[i];
    if (h.nesterov)
      w[i] += h.momentum * velocity[i] - h.lr * g[i];
    else
      w[i] += velocity[i];
  }
}

void adam_update(int64_t n, const AdamHyper& h, int64_t step, float* w, const float* g, float* m,
                 float* v) {
  adam_apply(n, h, adam_step_size(h, step), w, g, m, v);
}

void adam_apply(int64_t n, const AdamHyper& h, float alpha, float* w, const float* g, float* m,
                float* v) {
  const float one_minus_b1 = 1.0f - h.beta1, one_minus_b2 = 1.0f - h.beta2;
  for (int64_t i = 0; i < n; ++i) {
    m[i] += (g[i] - m[i]) * one_minus_b1;
    v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
    w[i] -= (m[i] * alpha) / (std::sqrt(v[i]) + h.epsilon);
  }
}

void rmsprop_update(int64_t n, const RmspropHyper& h, float* w, const float* g, float* v) {
  const float one_minus_rho = 1.0f - h.rho;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = h.rho * v[i] + one_minus_rho * g[i] * g[i];
    w[i] -= h.lr * g[i] / std::sqrt(v[i] + h.epsilon);
  }
}

}  // namespace ref
}  // namespace cnn
