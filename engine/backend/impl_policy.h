// Which implementation runs an op on the GPU: the handwritten kernel ("native") or cuDNN.
// The choice is a pure function of the policy and of what each side supports, so it is
// tested without a GPU; under "auto" the caller times both once per shape and passes
// the winner in.
#pragma once

#include <optional>
#include <string>

#include "cnnk/status.h"

namespace cnn {

enum class ImplPolicy { Native, Cudnn, Auto };
enum class Impl { Native, Cudnn };

// "native", "cudnn", "auto"; anything else throws ConfigError.
ImplPolicy parse_impl_policy(const std::string& name);
std::string impl_policy_name(ImplPolicy p);
std::string impl_name(Impl i);

struct ImplChoice {
  Impl impl = Impl::Native;
  bool needs_timing = false;  // auto, both supported, no winner known yet
  std::string reason;         // why, when it is not what the policy asked for
};

// The policy for a pass that cannot be timed, since timing runs it more than once (an
// in-place forward would read its own output; batch norm's training forward would move
// the running statistics twice): auto runs it native, native and cudnn stay as they are.
ImplPolicy untimed(ImplPolicy policy);

// native: native when it supports the configuration, else cuDNN (reason: native's).
// cudnn: cuDNN when it supports it, else native (reason: cuDNN's).
// auto: the timed winner when known; needs_timing when both support it; else the one
// that does. When neither supports it, throws ConfigError with both reasons.
ImplChoice choose_impl(ImplPolicy policy, cnnk::Support native, cnnk::Support cudnn,
                       std::optional<Impl> timed_winner = std::nullopt);

}  // namespace cnn
