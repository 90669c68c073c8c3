// Optimizer updates: two steps of each against Keras's formulas evaluated in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/optim/optim_update.h"

namespace cnn {
namespace {

const std::vector<double> kW0 = {1.0, -0.5, 0.25, 2.0, 0.0};
const std::vector<std::vector<double>> kGrads = {{0.1, -0.2, 0.3, 0.0, -1.5},
                                                 {0.05, 0.1, -0.4, 1.0, -1.5}};

std::vector<float> to_float(const std::vector<double>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  return out;
}

// Float arithmetic against the double formula: a few float roundings per step.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(1.0, std::abs(want[i])))
        << what << " [" << i << "]";
}

struct SgdCase {
  const char* name;
  SgdHyper h;
};

TEST(OptimRef, SgdPlainMomentumNesterov) {
  const SgdCase cases[] = {{"plain", {0.1f, 0.0f, false}},
                           {"momentum", {0.1f, 0.9f, false}},
                           {"nesterov", {0.1f, 0.9f, true}}};
  for (const SgdCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<float> w = to_float(kW0), vel(kW0.size(), 0.0f);
    std::vector<double> ew = kW0, ev(kW0.size(), 0.0);
    const double lr = static_cast<double>(c.h.lr), mu = static_cast<double>(c.h.momentum);
    for (const std::vector<double>& g : kGrads) {
      const std::vector<float> gf = to_float(g);
      ref::sgd_update(static_cast<int64_t>(w.size()), c.h, w.data(), gf.data(),
                      c.h.momentum == 0.0f ? nullptr : vel.data());
      for (size_t i = 0; i < ew.size(); ++i) {
        if (mu == 0.0) {
          ew[i] -= lr * g[i];
          continue;
        }
        ev[i] = mu * ev[i] - lr * g[i];
        ew[i] += c.h.nesterov ? mu * ev[i] - lr * g[i] : ev[i];
      }
      expect_close(w, ew, "w");
      if (mu != 0.0) expect_close(vel, ev, "velocity");
    }
  }
  // By hand, plain: 1 - 0.1 * 0.1 - 0.1 * 0.05.
  std::vector<float> w = {1.0f};
  for (float g : {0.1f, 0.05f}) ref::sgd_update(1, {0.1f, 0.0f, false}, w.data(), &g, nullptr);
  EXPECT_NEAR(w[0], 0.985, 1e-7);
  // By hand, momentum 0.9: v1 = -0.01, w1 = 0.99; v2 = -0.009 - 0.005, w2 = 0.976.
  w = {1.0f};
  float v = 0.0f;
  for (float g : {0.1f, 0.05f}) ref::sgd_update(1, {0.1f, 0.9f, false}, w.data(), &g, &v);
  EXPECT_NEAR(v, -0.014, 1e-7);
  EXPECT_NEAR(w[0], 0.976, 1e-7);
}

TEST(OptimRef, AdamTwoSteps) {
  const AdamHyper h{0.01f, 0.9f, 0.999f, 1e-7f};
  std::vector<float> w = to_float(kW0), m(kW0.size(), 0.0f), v(kW0.size(), 0.0f);
  std::vector<double> ew = kW0, em(kW0.size(), 0.0), ev(kW0.size(), 0.0);
  const double lr = static_cast<double>(h.lr), b1 = static_cast<double>(h.beta1),
               b2 = static_cast<double>(h.beta2), eps = static_cast<double>(h.epsilon);
  int64_t step = 0;
  for (const std::vector<double>& g : kGrads) {
    ++step;
    const std::vector<float> gf = to_float(g);
    ref::adam_update(static_cast<int64_t>(w.size()), h, step, w.data(), gf.data(), m.data(),
                     v.data());
    const double t = static_cast<double>(step);
    const double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    for (size_t i = 0; i < ew.size(); ++i) {
      em[i] += (g[i] - em[i]) * (1 - b1);
      ev[i] += (g[i] * g[i] - ev[i]) * (1 - b2);
      ew[i] -= alpha * em[i] / (std::sqrt(ev[i]) + eps);
    }
    expect_close(w, ew, "w");
    expect_close(m, em, "m");
    expect_close(v, ev, "v");
    if (step == 1) {
      // The first Adam step moves every weight with a nonzero gradient by about lr,
      // against the gradient's sign.
      EXPECT_NEAR(w[0], 1.0 - 0.01, 1e-5);
      EXPECT_NEAR(w[1], -0.5 + 0.01, 1e-5);
      EXPECT_EQ(w[3], 2.0f);  // zero gradient, zero moments: untouched
    }
  }
}

TEST(OptimRef, AdamStepCountsFromOne) {
  float w = 1.0f, g = 0.5f, m = 0.0f, v = 0.0f;
  EXPECT_THROW(ref::adam_update(1, AdamHyper{}, 0, &w, &g, &m, &v), Error);
}

TEST(OptimRef, RmspropTwoSteps) {
  const RmspropHyper h{0.001f, 0.9f, 1e-7f};
  std::vector<float> w = to_float(kW0), v(kW0.size(), 0.0f);
  std::vector<double> ew = kW0, ev(kW0.size(), 0.0);
  const double lr = static_cast<double>(h.lr), rho = static_cast<double>(h.rho),
               eps = static_cast<double>(h.epsilon);
  for (const std::vector<double>& g : kGrads) {
    const std::vector<float> gf = to_float(g);
    ref::rmsprop_update(static_cast<int64_t>(w.size()), h, w.data(), gf.data(), v.data());
    for (size_t i = 0; i < ew.size(); ++i) {
      ev[i] = rho * ev[i] + (1 - rho) * g[i] * g[i];
      ew[i] -= lr * g[i] / std::sqrt(ev[i] + eps);
    }
    expect_close(w, ew, "w");
    expect_close(v, ev, "v");
  }
  // By hand, first step of g = 0.1: v = 0.001, w -= 0.001 * 0.1 / sqrt(0.001 + 1e-7).
  float w1 = 1.0f, v1 = 0.0f, g1 = 0.1f;
  ref::rmsprop_update(1, h, &w1, &g1, &v1);
  EXPECT_NEAR(v1, 0.001, 1e-9);
  EXPECT_NEAR(w1, 1.0 - 0.0001 / std::sqrt(0.0010001), 1e-7);
}

}  // namespace
}  // namespace cnn
