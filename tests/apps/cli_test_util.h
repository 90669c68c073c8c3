// Helpers for the command-line tests: a scratch directory per test, and a runner that
// starts the real `cnn` binary there (fork + exec), capturing stdout, stderr and how the
// process ended.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/scratch_dir.h"

namespace cnn::clitest {

namespace fs = std::filesystem;

using test::ScratchDir;  // a fresh folder per test, removed after it

// How one run of the binary ended.
struct CliResult {
  bool exited = false;     // ended through exit() (not a signal, not our timeout)
  int exit_code = -1;      // valid when exited
  int signal = 0;          // the terminating signal, when not exited
  bool timed_out = false;  // killed by the runner after the time limit
  std::string out, err;

  // For failure messages: everything about the run.
  std::string describe() const {
    std::ostringstream s;
    if (timed_out)
      s << "timed out";
    else if (exited)
      s << "exit code " << exit_code;
    else
      s << "killed by signal " << signal;
    s << "\n--- stdout ---\n" << out << "--- stderr ---\n" << err << "---";
    return s.str();
  }
};

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_text(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Runs `binary args...` with `cwd` as its working directory. Its stdout and stderr go to
// two files under `log_dir`, read back when it ends. A run past `timeout` is killed.
inline CliResult run_process(const std::string& binary, const std::vector<std::string>& args,
                             const fs::path& cwd, const fs::path& log_dir,
                             std::chrono::seconds timeout = std::chrono::seconds(180)) {
  const std::string out_path = (log_dir / "cli_stdout.txt").string();
  const std::string err_path = (log_dir / "cli_stderr.txt").string();
  const std::string cwd_str = cwd.string();
  // Everything the child needs is prepared before fork: after it, only exec-safe calls.
  std::vector<std::string> storage;
  storage.push_back(binary);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (out_fd < 0 || err_fd < 0 || null_fd < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0 ||
        ::dup2(null_fd, 0) < 0 || ::chdir(cwd_str.c_str()) != 0)
      ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }

  CliResult r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0) throw std::runtime_error("waitpid failed");
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!r.timed_out) {
    r.exited = WIFEXITED(status);
    if (r.exited) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  }
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

// The lines of a text, without their line ends; a last line without "\n" counts too.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A 28x28 model with one layer of each family that the measuring commands and the GPU
// paths dispatch: convolution, batch norm, pooling, dense.
inline const char* const kTinyModel = R"({"name": "tiny-perf", "input": [1, 28, 28],
 "layers": [
   {"type": "Conv2D", "name": "c1", "filters": 4, "kernel_size": 3, "padding": "same",
    "activation": "relu"},
   {"type": "BatchNormalization", "name": "bn"},
   {"type": "MaxPooling2D", "name": "pool"},
   {"type": "Flatten"},
   {"type": "Dense", "units": 10, "activation": "softmax"}]})";

// A big-endian 32-bit field of an IDX header.
inline std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// Writes DIR/PREFIX-images-idx3-ubyte and -labels-idx1-ubyte: n 28x28 images of 10 classes: class c
// is a bright 6x6 square at a place of its own, over faint noise. Learnable within an epoch or two.
inline void write_split(const fs::path& dir, const std::string& prefix, uint32_t n, uint32_t seed) {
  std::string images = u32(0x803) + u32(n) + u32(28) + u32(28);
  std::string labels = u32(0x801) + u32(n);
  uint32_t s = seed;
  for (uint32_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    const int c = static_cast<int>((s >> 16) % 10);
    labels.push_back(static_cast<char>(c));
    const int top = 2 + (c / 5) * 12, left = 2 + (c % 5) * 5;
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        s = s * 1664525u + 1013904223u;
        const bool on = y >= top && y < top + 6 && x >= left && x < left + 4;
        images.push_back(static_cast<char>(on ? 200 + (s >> 28) : (s >> 27)));
      }
  }
  write_text(dir / (prefix + "-images-idx3-ubyte"), images);
  write_text(dir / (prefix + "-labels-idx1-ubyte"), labels);
}

// The four Fashion-MNIST files, gzip-compressed as ../shared/data holds them.
inline const char* const kFashionFiles[] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz"};

// The real Fashion-MNIST folder, or empty when this checkout has no data.
inline std::string real_data_dir() {
  const fs::path dir = fs::path(CNN_TEST_SHARED_DATA) / "fashion-mnist";
  for (const char* name : kFashionFiles) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / name, ec)) return {};
  }
  return dir.string();
}

}  // namespace cnn::clitest

#define REQUIRE_REAL_DATA()                               \
  do {                                                    \
    if (::cnn::clitest::real_data_dir().empty())          \
      GTEST_SKIP() << "no Fashion-MNIST data in shared/"; \
  } while (0)
