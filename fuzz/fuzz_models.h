// The model whose weights the weights-file target loads: every kind of parameter the
// format carries (conv kernel and bias, batch-norm scale, offset and running statistics,
// dense kernel and bias) in 55 floats, so a valid file is under 1 KB and the fuzzer can
// afford to mutate whole files. fuzz/seeds.cpp writes the seed corpus from it.
#pragma once

#include "engine/graph/layers.h"
#include "engine/graph/model.h"

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

}  // namespace cnn::fuzz
