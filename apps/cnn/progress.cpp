#include "apps/cnn/progress.h"

#include <unistd.h>

#include "engine/core/error.h"

namespace cnn::app {

ProgressMode choose_progress_mode(const std::string& progress, bool quiet, bool terminal) {
  if (quiet) return ProgressMode::Quiet;
  if (progress == "bar") return ProgressMode::Bar;
  if (progress == "lines") return ProgressMode::Lines;
  CNN_CHECK(progress == "auto", ConfigError, "--progress must be auto, bar or lines, not '{}'",
            progress);
  return terminal ? ProgressMode::Bar : ProgressMode::Lines;
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

}  // namespace cnn::app
