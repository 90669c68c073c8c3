#include "apps/cnn/build_info.h"

#include <fmt/format.h>

namespace cnn::app {

std::string build_info_line() {
  const BuildInfo& b = build_info();
  const std::string cuda = *b.cuda ? fmt::format(", CUDA {}", b.cuda) : ", CPU only";
  return fmt::format("{} (commit {}, {}, {}{})", b.version, b.commit, b.build_type, b.compiler,
                     cuda);
}

nlohmann::ordered_json build_info_json() {
  const BuildInfo& b = build_info();
  nlohmann::ordered_json j{{"version", b.version},
                           {"commit", b.commit},
                           {"build_type", b.build_type},
                           {"compiler", b.compiler}};
  j["cuda_toolkit"] = *b.cuda ? nlohmann::ordered_json(b.cuda) : nlohmann::ordered_json(nullptr);
  return j;
}

}  // namespace cnn::app
