// Activation names, as Keras spells them.
#include "engine/ops/activation/activation.h"

#include "engine/core/error.h"

namespace cnn {
namespace {

constexpr Activation kAll[] = {Activation::Linear, Activation::Relu, Activation::Sigmoid,
                               Activation::Tanh, Activation::Softmax};

}  // namespace

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::Linear:
      return "linear";
    case Activation::Relu:
      return "relu";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::Tanh:
      return "tanh";
    case Activation::Softmax:
      return "softmax";
  }
  throw Error(fmt::format("activation_name: unknown activation value {}", static_cast<int>(a)));
}

Activation parse_activation(const std::string& name) {
  std::string accepted;
  for (Activation a : kAll) {
    if (name == activation_name(a)) return a;
    accepted += accepted.empty() ? "" : ", ";
    accepted += activation_name(a);
  }
  throw ConfigError(fmt::format("unknown activation '{}'; accepted: {}", name, accepted));
}

}  // namespace cnn
