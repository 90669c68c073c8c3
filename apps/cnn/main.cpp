// cnn: train, evaluate and inspect CNNs on Fashion-MNIST and MNIST.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "apps/cnn/build_info.h"
#include "apps/cnn/commands.h"
#include "apps/cnn/process_clock.h"
#include "engine/core/error.h"

int main(int argc, char** argv) {
  cnn::app::mark_process_start();  // first: time to accuracy counts the whole run
  CLI::App app{"cnn: a CUDA CNN engine with a CPU reference backend"};
  app.set_version_flag("--version", "cnn " + cnn::app::build_info_line());
  app.require_subcommand(1);
  std::function<int()> run;
  cnn::app::add_summary_command(app, run);
  cnn::app::add_train_command(app, run);
  cnn::app::add_evaluate_command(app, run);
  cnn::app::add_devices_command(app, run);
  cnn::app::add_verify_command(app, run);
  cnn::app::add_predict_command(app, run);
  cnn::app::add_filter_command(app, run);
  cnn::app::add_bench_command(app, run);
  cnn::app::add_profile_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 answers a misspelt command with "A subcommand is required": name it instead.
    const std::vector<std::string> rest = app.remaining();
    if (app.get_subcommands().empty() && !rest.empty() && e.get_name() == "RequiredError") {
      std::string names;
      for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
        names += (names.empty() ? "" : ", ") + sub->get_name();
      fmt::print(stderr, "cnn: error: unknown command or option '{}' (commands: {})\n",
                 rest.front(), names);
      fmt::print(stderr, "Run with --help for more information.\n");
      return static_cast<int>(CLI::ExitCodes::ExtrasError);
    }
    return app.exit(e);
  }
  try {
    return run();
  } catch (const cnn::Error& e) {
    fmt::print(stderr, "cnn: error: {}\n", e.what());
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "cnn: error: out of host memory (try a smaller --batch-size or --limit)\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "cnn: internal error: {}\n", e.what());
  }
  return 1;
}
