// What this binary was built from: the version, the source tree's commit (git describe,
// "-dirty" for uncommitted changes, "unknown" outside a git checkout), the build type,
// the compiler and the CUDA toolkit. `cnn --version` prints it, and every JSON report
// carries it as "build", so a figure can be traced to the code that produced it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace cnn::app {

struct BuildInfo {
  const char* version;
  const char* commit;
  const char* build_type;
  const char* compiler;
  const char* cuda;  // the CUDA toolkit's version, "" in a CPU-only build
};

// Defined in build_info_generated.cpp, which cmake/CnnBuildInfo.cmake writes into the
// build tree on every build (the cnn_build_info library).
const BuildInfo& build_info();

// "0.1.0 (commit 1a2b3c4d5e6f, Release, GNU 12.2.0, CUDA 12.8.93)".
std::string build_info_line();
nlohmann::ordered_json build_info_json();

}  // namespace cnn::app
