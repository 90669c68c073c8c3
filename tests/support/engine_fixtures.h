// Helpers for engine tests: small datasets and models that need no files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/rng.h"
#include "engine/graph/layers.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/dataset.h"
#include "engine/train/trainer.h"

namespace cnn::testing {

// n images of 1x8x8 whose class (of 4) is the brightest quadrant: learnable in a few
// steps, so training tests can check that the loss falls.
inline Dataset quadrant_dataset(int64_t n, uint64_t seed) {
  Dataset d;
  d.images = Tensor::empty_host(Shape{n, 1, 8, 8});
  d.labels = Tensor::empty_host(Shape{n});
  d.classes = 4;
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    float* img = d.images.host() + i * 64;
    const int cls = static_cast<int>(rng.below(4));
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const int q = (y / 4) * 2 + x / 4;
        img[y * 8 + x] = static_cast<float>(rng.uniform(0.0, 0.5) + (q == cls ? 0.5 : 0.0));
      }
    d.labels.host()[i] = static_cast<float>(cls);
  }
  d.source = "quadrants";
  return d;
}

// A small model that uses every stochastic and stateful layer: batch norm, spatial
// dropout, dropout.
inline Model small_stochastic_model() {
  Model m("small-stochastic");
  m.input(Shape{1, 8, 8});
  m.add(layers::conv2d(4, 3, "same", Activation::Relu));
  m.add(layers::batch_norm());
  m.add(layers::spatial_dropout2d(0.2f));
  m.add(layers::max_pool2d(2));
  m.add(layers::flatten());
  m.add(layers::dense(16, Activation::Relu));
  m.add(layers::dropout(0.3f));
  m.add(layers::dense(4, Activation::Softmax));
  m.finish();
  return m;
}

// Where the trainable (or, with trainable false, the state) entries of `p` sit in their
// flat buffer, in order: the buffer also holds the gaps that align each entry.
inline std::vector<int64_t> flat_indices(const Parameters& p, bool trainable = true) {
  const Tensor& flat = trainable ? p.values() : p.state();
  std::vector<int64_t> out;
  for (const Parameters::Entry& e : p.entries())
    if (e.trainable == trainable)
      for (int64_t i = 0; i < e.value.numel(); ++i) out.push_back(e.value.data() - flat.data() + i);
  return out;
}

// Each layer's parameter count, in graph order (the summary's "Param #" column).
inline std::vector<int64_t> layer_params(const Model& m) {
  std::vector<int64_t> out;
  for (const Node& n : m.nodes())
    if (n.layer) out.push_back(n.param_count());
  return out;
}

// Two epochs of SGD (lr 0.05) under one-cycle on `be`: the momentum fixed at
// `sgd_momentum` (cycle false) or cycled from `max` down to `base` and back. The tests
// that each step's momentum reaches the update compare such runs.
struct OneCycleRun {
  std::vector<float> weights;
  int64_t replayed = 0;  // steps replayed from a CUDA graph
};
inline OneCycleRun one_cycle_sgd(Backend& be, float sgd_momentum, bool cycle, double base,
                                 double max) {
  Model m = small_stochastic_model();
  Trainer t(m, be, 4);
  FitOptions o;
  o.epochs = 2;
  o.batch_size = 25;
  o.optimizer.kind = OptimizerKind::Sgd;
  o.optimizer.learning_rate = 0.05f;
  o.optimizer.momentum = sgd_momentum;
  o.lr_schedule.kind = LrScheduleKind::OneCycle;
  o.lr_schedule.cycle_momentum = cycle;
  o.lr_schedule.base_momentum = base;
  o.lr_schedule.max_momentum = max;
  t.fit(quadrant_dataset(200, 2), o);
  return {t.parameters().snapshot().values, t.graph_stats().replayed};
}

// The real dataset folder, or "" when this machine does not have it.
inline std::string real_fashion_mnist_dir() {
  const std::string dir = std::string(CNN_TEST_SHARED_DATA) + "/fashion-mnist";
  return dataset_dir_complete(dir) ? dir : "";
}

}  // namespace cnn::testing
