// A lint over the sources: every kernel launch is checked. In kernels/src, each function
// that launches (detail::launch, the only place with <<<...>>>) reads cudaGetLastError()
// after it; in engine/, every call of a launcher (a cnnk:: function returning cudaError_t)
// sits inside launched(...) or CNN_CUDA(...), so no failure goes unseen.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>

namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> files_under(const fs::path& dir, const std::set<std::string>& exts) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && exts.count(e.path().extension().string())) out.push_back(e.path());
  return out;
}

const fs::path kRoot = CNN_SOURCE_DIR;

// Names of the launchers: functions declared in kernels/include/cnnk/ returning cudaError_t.
std::set<std::string> launcher_names() {
  std::set<std::string> names;
  const std::regex decl(R"(cudaError_t\s+(\w+)\s*\()");
  for (const fs::path& h : files_under(kRoot / "kernels/include/cnnk", {".h"})) {
    const std::string text = read(h);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), decl);
         it != std::sregex_iterator(); ++it)
      names.insert((*it)[1]);
  }
  return names;
}

TEST(LaunchLint, EveryKernelFunctionReturnsTheLaunchStatus) {
  const auto sources = files_under(kRoot / "kernels/src", {".cu", ".cuh"});
  ASSERT_FALSE(sources.empty());
  int launches = 0;
  for (const fs::path& p : sources) {
    const std::string text = read(p);
    const std::string name = p.filename().string();
    // The <<<>>> syntax lives in detail::launch alone, the one call the kernel simulator
    // (tests/sim) replaces: a launch written out anywhere else would escape it.
    if (name != "launch_util.cuh") {
      EXPECT_EQ(text.find("<<<"), std::string::npos)
          << name << ": launch kernels with detail::launch, not <<<>>>";
    }
    size_t pos = 0;
    while ((pos = text.find("detail::launch(", pos)) != std::string::npos) {
      ++launches;
      // The launching function must read the status after it: cudaGetLastError() before
      // the function's closing brace (a '}' at the start of a line). The runtime keeps the
      // first launch error until it is read, so one read after several launches counts.
      const size_t function_end = text.find("\n}", pos);
      const size_t status = text.find("cudaGetLastError()", pos);
      EXPECT_TRUE(status != std::string::npos && status < function_end)
          << name << ": the launch at line "
          << std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n') + 1
          << " is not followed by cudaGetLastError() in its function";
      pos += 3;
    }
  }
  EXPECT_GT(launches, 10);
}

TEST(LaunchLint, EveryLauncherCallInTheEngineIsChecked) {
  const std::set<std::string> launchers = launcher_names();
  ASSERT_GT(launchers.size(), 10u);
  const std::regex call(R"(cnnk::(\w+)\s*\()");
  int calls = 0;
  for (const fs::path& p : files_under(kRoot / "engine", {".cpp", ".h"})) {
    const std::string text = read(p);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), call);
         it != std::sregex_iterator(); ++it) {
      if (!launchers.count((*it)[1])) continue;
      ++calls;
      // The statement's start: the last ';', '{' or '}' before the call.
      const size_t at = static_cast<size_t>(it->position());
      const size_t start = text.find_last_of(";{}", at);
      const std::string stmt = text.substr(start + 1, at - start - 1);
      EXPECT_TRUE(stmt.find("launched(") != std::string::npos ||
                  stmt.find("CNN_CUDA(") != std::string::npos)
          << p.filename().string() << ": cnnk::" << (*it)[1] << " is called unchecked";
    }
  }
  EXPECT_GT(calls, 10);
}

}  // namespace
