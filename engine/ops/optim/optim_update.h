// Optimizer updates over one flat parameter buffer, with Keras's formulas and defaults.
// One call updates every parameter of the model.
#pragma once

#include <cstdint>

namespace cnn {

// SGD: v = momentum * v - lr * g; w += v, or with nesterov w += momentum * v - lr * g.
// Without a velocity (null) it is w -= lr * g: the engine passes none when the momentum is
// 0 throughout. (With a velocity and momentum 0 the weights move alike, bit for bit.)
struct SgdHyper {
  float lr = 0.01f, momentum = 0.0f;
  bool nesterov = false;
};
// Adam (Keras): m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
// w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), t = step (from 1).
struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-7f;
};
// RMSprop (Keras 3): v = rho * v + (1 - rho) * g^2; w -= lr * g / sqrt(v + eps).
struct RmspropHyper {
  float lr = 1e-3f, rho = 0.9f, epsilon = 1e-7f;
};

// Adam's bias-corrected step size lr * sqrt(1 - b2^t) / (1 - b1^t), in double, for step
// t >= 1 (throws otherwise). Every backend applies the same float.
float adam_step_size(const AdamHyper& h, int64_t step);

namespace ref {
void sgd_update(int64_t n, const SgdHyper& h, float* w, const float* g, float* velocity);
void adam_update(int64_t n, const AdamHyper& h, int64_t step, float* w, const float* g, float* m,
                 float* v);
// The same update at a given step size (adam_update passes adam_step_size(h, step)).
void adam_apply(int64_t n, const AdamHyper& h, float step_size, float* w, const float* g, float* m,
                float* v);
void rmsprop_update(int64_t n, const RmspropHyper& h, float* w, const float* g, float* v);
}  // namespace ref

}  // namespace cnn
