#include "engine/backend/impl_policy.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace cnn {

ImplPolicy parse_impl_policy(const std::string& name) {
  if (name == "native") return ImplPolicy::Native;
  if (name == "cudnn") return ImplPolicy::Cudnn;
  if (name == "auto") return ImplPolicy::Auto;
  throw ConfigError(
      fmt::format("unknown implementation policy '{}': expected native, cudnn or auto", name));
}

ImplPolicy untimed(ImplPolicy policy) {
  return policy == ImplPolicy::Auto ? ImplPolicy::Native : policy;
}

std::string impl_policy_name(ImplPolicy p) {
  switch (p) {
    case ImplPolicy::Native:
      return "native";
    case ImplPolicy::Cudnn:
      return "cudnn";
    case ImplPolicy::Auto:
      return "auto";
  }
  return "?";
}

std::string impl_name(Impl i) { return i == Impl::Native ? "native" : "cudnn"; }

ImplChoice choose_impl(ImplPolicy policy, cnnk::Support native, cnnk::Support cudnn,
                       std::optional<Impl> timed_winner) {
  if (!native.ok && !cudnn.ok)
    throw ConfigError(
        fmt::format("no GPU implementation supports this configuration: native: {}; "
                    "cudnn: {}",
                    native.reason, cudnn.reason));
  ImplChoice c;
  switch (policy) {
    case ImplPolicy::Native:
      c.impl = native.ok ? Impl::Native : Impl::Cudnn;
      if (!native.ok) c.reason = fmt::format("native does not support it: {}", native.reason);
      break;
    case ImplPolicy::Cudnn:
      c.impl = cudnn.ok ? Impl::Cudnn : Impl::Native;
      if (!cudnn.ok) c.reason = fmt::format("cuDNN does not support it: {}", cudnn.reason);
      break;
    case ImplPolicy::Auto:
      if (native.ok && cudnn.ok) {
        c.impl = timed_winner.value_or(Impl::Native);
        c.needs_timing = !timed_winner.has_value();
        c.reason = timed_winner ? "faster when timed" : "";
      } else {
        c.impl = native.ok ? Impl::Native : Impl::Cudnn;
        c.reason = fmt::format("only {} supports it: {}", native.ok ? "native" : "cuDNN",
                               native.ok ? cudnn.reason : native.reason);
      }
      break;
  }
  return c;
}

}  // namespace cnn
