// Shared by the fuzz targets: the readers under test take paths, so each input is
// written to a scratch file first (on /dev/shm when there is one, so nothing touches a
// disk), named by target and process so parallel jobs and ctest runs do not collide.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace cnn::fuzz {

class ScratchFile {
 public:
  explicit ScratchFile(const std::string& target) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path dir = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                             ? fs::path("/dev/shm")
                             : fs::temp_directory_path();
    path_ = (dir / ("cnn-fuzz-" + target + "-" + std::to_string(::getpid()))).string();
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's content with the input; aborts if it cannot (a broken harness
  // must not pass for a robust reader).
  const std::string& write(const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A fuzz target's invariant: when it does not hold, stop with a message (libFuzzer
// records the input as a crash).
#define CNN_FUZZ_ASSERT(cond)                                                                \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

}  // namespace cnn::fuzz
