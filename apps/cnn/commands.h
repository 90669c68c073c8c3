// The `cnn` command line: one function per subcommand, each registered on the CLI11 app
// with its flags. Library errors propagate to main, which prints one line and exits 1.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace cnn::app {

// Registers the subcommand and sets `run` to the function to call when it was chosen.
void add_summary_command(CLI::App& app, std::function<int()>& run);
void add_train_command(CLI::App& app, std::function<int()>& run);
void add_evaluate_command(CLI::App& app, std::function<int()>& run);
void add_devices_command(CLI::App& app, std::function<int()>& run);
void add_verify_command(CLI::App& app, std::function<int()>& run);
void add_predict_command(CLI::App& app, std::function<int()>& run);
void add_filter_command(CLI::App& app, std::function<int()>& run);
void add_bench_command(CLI::App& app, std::function<int()>& run);
void add_profile_command(CLI::App& app, std::function<int()>& run);

}  // namespace cnn::app
