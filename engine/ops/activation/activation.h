// Activations. One elementwise path serves them all; softmax normalises over the
// channel axis (dimension 1) at every spatial position.
#pragma once

#include <cstdint>
#include <string>

namespace cnn {

enum class Activation { Linear, Relu, Sigmoid, Tanh, Softmax };

// "linear", "relu", ...; parse throws ConfigError listing the accepted names.
std::string activation_name(Activation a);
Activation parse_activation(const std::string& name);

// Shape of an activation's input viewed as [n, c, spatial].
struct ActivationGeometry {
  int64_t n = 0, c = 0, spatial = 1;
  int64_t size() const { return n * c * spatial; }
};

namespace ref {
template <class T>
void activation_forward(Activation a, const ActivationGeometry& g, const T* x, T* y);
// Backward in terms of the forward's output y (each of these can be): dx assigned;
// dx may alias dy but not y.
template <class T>
void activation_backward(Activation a, const ActivationGeometry& g, const T* y, const T* dy, T* dx);
}  // namespace ref

}  // namespace cnn
