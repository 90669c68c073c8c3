// A lint over the sources: every kernel launch is checked. In kernels/src, each function
// that launches (detail::launch, the only place with <<<...>>>) reads cudaGetLastError()
// after it; in engine/, every call of a launcher (a cnnk:: function returning cudaError_t)
// sits inside launched(...) or CNN_CUDA(...), so no failure goes unseen. And every kernel
// declares its block size (__launch_bounds__) and is launched with that size: a launch
// with more threads than the bound fails on a GPU only, since the kernel simulator has no
// registers to run out of.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

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

// The line of offset `pos` in `text`, from 1.
long line_of(const std::string& text, size_t pos) {
  return std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n') + 1;
}

// The arguments of the call whose '(' is at `open`, split at top-level commas. The first
// argument (the kernel) may be a template-id whose '<...>' holds commas; the others may
// hold '<' as a comparison, so only the first one counts angle brackets.
std::vector<std::string> call_arguments(const std::string& text, size_t open) {
  std::vector<std::string> args(1);
  int depth = 0, angle = 0;
  for (size_t i = open + 1; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '(' || ch == '[' || ch == '{') ++depth;
    if (ch == ')' || ch == ']' || ch == '}') {
      if (depth == 0) break;
      --depth;
    }
    if (args.size() == 1 && ch == '<') ++angle;
    if (args.size() == 1 && ch == '>') --angle;
    if (ch == ',' && depth == 0 && angle == 0) {
      args.emplace_back();
      continue;
    }
    if (ch == '\n' || ch == ' ') {
      if (!args.back().empty() && args.back().back() != ' ') args.back() += ' ';
      continue;
    }
    args.back() += ch;
  }
  for (std::string& a : args)
    while (!a.empty() && a.back() == ' ') a.pop_back();
  return args;
}

TEST(LaunchLint, EveryKernelIsLaunchedWithTheBlockSizeItDeclares) {
  const auto sources = files_under(kRoot / "kernels/src", {".cu", ".cuh"});
  ASSERT_FALSE(sources.empty());
  // Kernel name -> the thread count of its __launch_bounds__ (the first argument).
  std::map<std::string, std::string> bound;
  const std::regex bounded(
      R"(__global__\s+void\s+__launch_bounds__\(\s*([^,)]+?)\s*(,[^)]*)?\)\s*(\w+)\s*[(<])");
  const std::regex any_kernel(R"(__global__\s+void\s+(\w+)\s*\()");
  std::map<std::string, std::string> text_of;
  for (const fs::path& p : sources) {
    const std::string text = read(p);
    text_of[p.filename().string()] = text;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), bounded);
         it != std::sregex_iterator(); ++it) {
      EXPECT_EQ(bound.count((*it)[3]), 0u) << "kernel " << (*it)[3] << " is defined twice";
      bound[(*it)[3]] = (*it)[1];
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), any_kernel);
         it != std::sregex_iterator(); ++it)
      if ((*it)[1] != "__launch_bounds__")
        ADD_FAILURE() << p.filename().string() << ":" << line_of(text, size_t(it->position()))
                      << ": kernel " << (*it)[1]
                      << " has no __launch_bounds__: the compiler cannot know its block size";
  }
  int launches = 0;
  for (const auto& [name, text] : text_of) {
    size_t pos = 0;
    while ((pos = text.find("detail::launch(", pos)) != std::string::npos) {
      const std::vector<std::string> args = call_arguments(text, pos + 14);
      const long line = line_of(text, pos);
      pos += 3;
      if (args.size() < 3) continue;  // the definition of launch itself
      ++launches;
      const std::string kernel = args[0].substr(0, args[0].find('<'));
      const std::string& threads = args[2];
      const auto b = bound.find(kernel);
      ASSERT_NE(b, bound.end()) << name << ":" << line << ": no bounded kernel " << kernel;
      if (threads == b->second) continue;
      // Or a helper of this file, f(...), whose body names the bound (it returns at most
      // the bound, as channel_threads returns reduce_threads(length, bound)).
      const std::smatch call = [&] {
        std::smatch m;
        std::regex_match(threads, m, std::regex(R"((\w+)\(.*\))"));
        return m;
      }();
      bool helper_names_bound = false;
      if (!call.empty()) {
        const std::regex def("\\n\\w[\\w:<>, ]*\\s" + call[1].str() + "\\([^;]*?\\{");
        std::smatch d;
        if (std::regex_search(text, d, def)) {
          const size_t body = static_cast<size_t>(d.position()) + d.length();
          const std::string body_text = text.substr(body, text.find("\n}", body) - body);
          helper_names_bound = body_text.find(b->second) != std::string::npos;
        }
      }
      EXPECT_TRUE(helper_names_bound)
          << name << ":" << line << ": " << kernel << " is launched with " << threads
          << " threads but declares __launch_bounds__(" << b->second << ")";
    }
  }
  EXPECT_GT(launches, 30);
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
