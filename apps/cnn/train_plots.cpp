#include "apps/cnn/train_plots.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "engine/viz/confusion.h"
#include "engine/viz/curves.h"
#include "engine/viz/grids.h"

namespace cnn::app {

void write_training_plots(const TrainEndContext& ctx, const std::string& dataset) {
  if (ctx.out_dir.empty()) return;
  const std::filesystem::path dir = std::filesystem::path(ctx.out_dir) / "plots";
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json written = nlohmann::ordered_json::object();

  const std::string curves = (dir / "curves.png").string();
  viz::write_curves_png(ctx.history, curves);
  written["curves"] = curves;
  if (viz::first_conv_node(ctx.model) >= 0) {  // a model without convolutions has no filters
    const std::string filters = (dir / "filters.png").string();
    viz::write_filters_png(ctx.model, ctx.trainer.parameters(), filters);
    written["filters"] = filters;
  }
  const Tensor probs = ctx.trainer.predict(ctx.data.test.images, 256);
  const std::string confusion = (dir / "confusion.png").string();
  viz::write_confusion_png(viz::confusion_matrix(ctx.data.test.labels, probs),
                           viz::class_names(dataset), confusion);
  written["confusion"] = confusion;
  ctx.report["plots"] = written;
  if (!ctx.quiet) fmt::print("plots written to {}\n", dir.string());
}

}  // namespace cnn::app
