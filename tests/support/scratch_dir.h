// A directory for a test's files: fresh, under the system temp folder, and removed with
// everything in it when the object goes. mkdtemp picks the name, so two processes never
// share one: ctest -j, two build trees tested at once, or the same test name in the CPU
// and sanitizer suites. Every test that writes files takes its folder from here.
#pragma once

#include <stdlib.h>  // mkdtemp (POSIX)

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace cnn::test {

class ScratchDir {
 public:
  // prefix: the start of the folder's name, to tell whose folder a leftover is.
  explicit ScratchDir(const std::string& prefix = "cnn_test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;  // a destructor does not throw: what cannot go stays
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // A file (or folder) in the directory, as a string for the APIs that take one.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace cnn::test
