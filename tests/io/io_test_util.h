// Helpers for the I/O tests: a scratch directory per test, and writers of IDX files,
// raw or gzip-compressed.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/scratch_dir.h"

namespace cnn::iotest {

namespace fs = std::filesystem;

using Bytes = std::vector<uint8_t>;

using test::ScratchDir;  // a fresh folder per test, removed after it

inline void put_u32(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// An IDX file: magic, dims, data (written as given, not checked).
inline Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out;
  put_u32(out, magic);
  for (uint32_t d : dims) put_u32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// A well-formed images file: [n, rows, cols] with the given pixels.
inline Bytes images_idx(uint32_t n, uint32_t rows, uint32_t cols, const Bytes& pixels) {
  return idx_bytes(0x00000803u, {n, rows, cols}, pixels);
}

// A well-formed labels file: [n].
inline Bytes labels_idx(const Bytes& labels) {
  return idx_bytes(0x00000801u, {static_cast<uint32_t>(labels.size())}, labels);
}

// Deterministic pseudo-random bytes (a small LCG; the value matters, not the quality).
inline Bytes pattern_bytes(size_t n, uint32_t seed = 1, uint32_t modulo = 256) {
  Bytes out(n);
  uint32_t s = seed;
  for (size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    out[i] = static_cast<uint8_t>((s >> 24) % modulo);
  }
  return out;
}

inline void write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// Gzip-compresses `bytes` into `path` with zlib's gzopen/gzwrite.
inline void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  if (!gz) throw std::runtime_error("gzopen failed for " + path);
  if (!bytes.empty()) {
    const int written = gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
    if (written != static_cast<int>(bytes.size())) {
      gzclose(gz);
      throw std::runtime_error("gzwrite failed for " + path);
    }
  }
  if (gzclose(gz) != Z_OK) throw std::runtime_error("gzclose failed for " + path);
}

inline Bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Passes when `text` contains `part`; prints the whole text when it does not.
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n  does not contain \"" << part << "\"";
}

// Runs f, which must throw ErrorType; returns what() (empty, and a failure, otherwise).
template <class ErrorType, class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const ErrorType& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// Sets (or, with nullopt, unsets) an environment variable for the life of the object,
// then restores what was there before.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = std::string(old);
    set(value);
  }
  ~ScopedEnv() { set(old_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace cnn::iotest
