// The model whose weights the weights-file target loads: every kind of parameter the
// format carries (conv kernel and bias, batch-norm scale, offset and running statistics,
// dense kernel and bias) in 55 floats, so a valid file is under 1 KB and the fuzzer can
// afford to mutate whole files. fuzz/seeds.cpp writes the seed corpus from it.
#pragma once

#include <cstring>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/graph/layers.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"

namespace cnn::fuzz {

inline Model tiny_model() {
  Model m("fuzz-tiny");
  m.input(Shape{1, 4, 4});
  m.add(layers::conv2d(2, 3, "valid", Activation::Relu));  // 2x2x2
  m.add(layers::batch_norm());
  m.add(layers::flatten());
  m.add(layers::dense(3, Activation::Softmax));
  m.finish();
  return m;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline bool same_bits(const Parameters::Snapshot& a, const Parameters::Snapshot& b) {
  return same_bits(a.values, b.values) && same_bits(a.state, b.state);
}

// What the weights and checkpoint targets load into: the tiny model's parameters on the
// CPU, and their initial values, which a refused file must leave untouched.
struct TinyParams {
  CpuBackend backend;
  Model model = tiny_model();
  Parameters params{model, backend};
  Parameters::Snapshot baseline;

  TinyParams() {
    params.initialize(7);
    baseline = params.snapshot();
  }
};

}  // namespace cnn::fuzz
