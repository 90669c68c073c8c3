#include <fmt/format.h>

#include "apps/cnn/commands.h"
#include "engine/graph/model.h"
#include "engine/graph/zoo.h"

namespace cnn::app {

void add_summary_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("summary", "Print a model's Keras-style summary");
  auto model = std::make_shared<std::string>();
  std::string names;
  for (const auto& e : model_zoo()) names += (names.empty() ? "" : ", ") + e.name;
  cmd->add_option("--model", *model, "Model name: " + names)->required();
  cmd->callback([&run, model] {
    run = [model] {
      fmt::print("{}", summary(build_model(*model)));
      return 0;
    };
  });
}

}  // namespace cnn::app
