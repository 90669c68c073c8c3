#include "engine/core/error.h"

#include <utility>

namespace cnn {

Error::Error(std::string message) : std::runtime_error(message), message_(std::move(message)) {
  rebuild();
}

Error& Error::with_context(std::string context) {
  context_.push_back(std::move(context));
  rebuild();
  return *this;
}

void Error::rebuild() {
  full_.clear();
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
    full_ += *it;
    full_ += ": ";
  }
  full_ += message_;
}

}  // namespace cnn
