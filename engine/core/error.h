// The engine's error type. Library code throws cnn::Error (or a subclass); only the
// command line catches, prints one message and exits non-zero.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace cnn {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message);

  // Adds an outer layer of context ("while loading dataset X"); what() lists the
  // context outermost first, then the original message.
  Error& with_context(std::string context);
  const std::string& message() const { return message_; }
  const char* what() const noexcept override { return full_.c_str(); }

 private:
  void rebuild();
  std::string message_;
  std::vector<std::string> context_;
  std::string full_;
};

// Invalid user-facing configuration: a layer that cannot be built, a bad flag value.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Malformed or unreadable input files (datasets, weights).
class DataError : public Error {
 public:
  using Error::Error;
};

// A CUDA, cuBLAS or cuDNN call that failed, or no usable GPU.
class DeviceError : public Error {
 public:
  using Error::Error;
};

// The GPU had no room for an allocation, even with the cache given back: what a caller
// with a leaner way (a cuDNN algorithm with a smaller workspace) may recover from.
class OutOfDeviceMemory : public DeviceError {
 public:
  using DeviceError::DeviceError;
};

// Runs f(); on cnn::Error adds `context` and rethrows.
template <class F>
decltype(auto) with_context(const std::string& context, F&& f) {
  try {
    return f();
  } catch (Error& e) {
    e.with_context(context);
    throw;
  }
}

}  // namespace cnn

#define CNN_CHECK(cond, ErrorType, ...)                     \
  do {                                                      \
    if (!(cond)) throw ErrorType(fmt::format(__VA_ARGS__)); \
  } while (0)
