// The Keras model summary.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/graph/model.h"

namespace cnn {
namespace {

// 1413834 -> "1,413,834"
std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string bytes_text(int64_t params) {
  const double bytes = static_cast<double>(params) * 4.0;
  if (bytes >= 1024.0 * 1024.0) return fmt::format("{:.2f} MB", bytes / (1024.0 * 1024.0));
  if (bytes >= 1024.0) return fmt::format("{:.2f} KB", bytes / 1024.0);
  return fmt::format("{:.0f} B", bytes);
}

}  // namespace

std::string summary(const Model& m) {
  const bool chain = m.is_chain();
  // Keras's column widths, widened where a long name (batch_normalization_1
  // (BatchNormalization)) would otherwise run into the next column.
  int w_layer = 33;
  for (const Node& n : m.nodes()) {
    const size_t type = n.layer ? n.layer->type().size() : 10;  // "InputLayer"
    w_layer = std::max(w_layer, static_cast<int>(n.name.size() + type + 5));
  }
  const int w_shape = 25, w_params = 12, w_conn = 24;
  const int width = w_layer + w_shape + w_params + (chain ? 0 : w_conn);
  const std::string rule_thin(static_cast<size_t>(width), '_');
  const std::string rule_thick(static_cast<size_t>(width), '=');
  std::string s = fmt::format("Model: \"{}\"\n{}\n", m.name(), rule_thin);
  s += fmt::format("{:<{}}{:<{}}{:<{}}", " Layer (type)", w_layer, "Output Shape", w_shape,
                   "Param #", w_params);
  if (!chain) s += "Connected to";
  s += "\n" + rule_thick + "\n";

  const auto& nodes = m.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    // Keras lists the input layer only for functional models.
    if (!n.layer && chain) continue;
    const std::string type = n.layer ? n.layer->type() : "InputLayer";
    const int64_t params = n.param_count();
    // Keras prints images channels-last; the engine stores them NCHW. The summary shows
    // Keras's order so that it reads like the model's Keras description.
    std::vector<int64_t> dims = n.shape.dims();
    if (dims.size() == 3) dims = {dims[1], dims[2], dims[0]};
    std::string shape = "(None";
    for (int64_t d : dims) shape += fmt::format(", {}", d);
    shape += ")";
    s += fmt::format("{:<{}}{:<{}}{:<{}}", " " + n.name + " (" + type + ")", w_layer, shape,
                     w_shape, std::to_string(params), w_params);
    if (!chain) {
      std::string conn;
      for (size_t k = 0; k < n.inputs.size(); ++k)
        conn += (k ? ", " : "") + nodes[static_cast<size_t>(n.inputs[k])].name;
      s += conn.empty() ? "-" : conn;
    }
    s += "\n";
    s += (i + 1 < nodes.size() ? "\n" : "");
  }
  const int64_t trainable = m.count_params(true), frozen = m.count_params(false);
  s += rule_thick + "\n";
  s += fmt::format("Total params: {} ({})\n", with_commas(trainable + frozen),
                   bytes_text(trainable + frozen));
  s += fmt::format("Trainable params: {} ({})\n", with_commas(trainable), bytes_text(trainable));
  s += fmt::format("Non-trainable params: {} ({})\n", with_commas(frozen), bytes_text(frozen));
  s += rule_thin + "\n";
  return s;
}

}  // namespace cnn
