// The process's own clock, for "time to accuracy" figures that count everything a run
// costs (loading the data, building the model, the first-use plans), not just training.
#pragma once

namespace cnn::app {

// Starts the clock; main() calls it first. Later calls change nothing.
void mark_process_start();
// Seconds since mark_process_start() (or since the first call, when main did not mark).
double seconds_since_process_start();

}  // namespace cnn::app
