// cnn predict: classify pictures (PNG files, or every image of an IDX file) with a
// trained model, printing the top classes with their probabilities; optionally write every
// probability to a CSV file and draw one layer's feature maps for the first picture.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <numeric>

#include "apps/cnn/commands.h"
#include "apps/cnn/run_setup.h"
#include "engine/backend/backend.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/graph/executor.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/io/dataset.h"
#include "engine/io/idx.h"
#include "engine/io/png.h"
#include "engine/io/png_input.h"
#include "engine/io/weights_file.h"
#include "engine/train/checkpointing.h"
#include "engine/viz/confusion.h"
#include "engine/viz/grids.h"

namespace cnn::app {
namespace {

struct PredictFlags {
  std::string model = "mnist-cnn";
  std::string weights, checkpoint;
  std::vector<std::string> images;
  std::string device = "auto";
  std::string dataset = "fashion-mnist";
  std::string invert = "auto";
  int top = 3;
  int64_t batch_size = 256;
  int64_t limit = 0;  // of each IDX file, the first this many images (0: all)
  std::string feature_maps, layer;
  std::string csv;
};

// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// A model and its trained weights on a backend: from --checkpoint (a checkpoint, or a
// weights file naming a zoo model), or from --model and --weights.
using LoadedModel = InferenceModel;

std::unique_ptr<LoadedModel> load_model(const PredictFlags& f, Backend& backend) {
  CNN_CHECK(f.checkpoint.empty() != f.weights.empty(), ConfigError,
            "give either --checkpoint FILE or --weights FILE (with --model)");
  if (!f.checkpoint.empty()) return load_checkpoint_for_inference(f.checkpoint, backend);
  auto m = std::make_unique<LoadedModel>(LoadedModel{build_model(f.model), nullptr, ""});
  m->params = std::make_unique<Parameters>(m->model, backend);
  load_weights(f.weights, m->model, *m->params);
  m->source = fmt::format("{} ({} parameters) with weights {}", m->model.name(),
                          m->model.count_params(), f.weights);
  return m;
}

// One picture ready for the model, and how it got there.
struct InputImage {
  std::string name;
  std::vector<float> pixels;  // rows * cols in [0, 1]
  std::string note;           // "inverted, resized from 640x480", or ""
};

bool starts_like_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in.good(), DataError, "cannot open '{}'", path);
  std::string head(8, '\0');
  in.read(head.data(), 8);
  head.resize(static_cast<size_t>(in.gcount()));
  return is_png_signature(head);
}

void read_inputs(const std::string& path, int rows, int cols, InvertMode invert, int64_t limit,
                 std::vector<InputImage>& out) {
  if (starts_like_png(path)) {
    const Image8 img = read_png(path);
    ModelInput in = prepare_model_input(img, rows, cols, invert);
    std::vector<std::string> notes;
    if (in.inverted) notes.push_back("inverted");
    if (in.resized) notes.push_back(fmt::format("resized from {}x{}", img.width, img.height));
    std::string note;
    for (const std::string& n : notes) note += (note.empty() ? "" : ", ") + n;
    out.push_back({path, std::move(in.pixels), note});
    return;
  }
  IdxArray idx;
  try {
    idx = read_idx_images(path);
  } catch (const DataError& e) {
    throw DataError(
        fmt::format("'{}' is neither a PNG image nor an IDX images file ({})", path, e.what()));
  }
  CNN_CHECK(idx.dims[1] == rows && idx.dims[2] == cols, DataError,
            "'{}' holds {}x{} images; the model reads {}x{}", path, idx.dims[1], idx.dims[2], rows,
            cols);
  const size_t plane = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const int64_t count = limit > 0 ? std::min(limit, idx.dims[0]) : idx.dims[0];
  for (int64_t i = 0; i < count; ++i) {
    InputImage im{fmt::format("{}[{}]", path, i), std::vector<float>(plane), ""};
    const uint8_t* src = idx.data.data() + static_cast<size_t>(i) * plane;
    for (size_t j = 0; j < plane; ++j) im.pixels[j] = src[j] / 255.0f;
    if (invert == InvertMode::Always) {
      for (float& v : im.pixels) v = 1.0f - v;
      im.note = "inverted";
    }
    out.push_back(std::move(im));
  }
}

int run_predict(const PredictFlags& f) {
  const InvertMode invert = parse_invert_mode(f.invert);
  check_output_path("--csv", f.csv);
  const Device device = resolve_device(f.device);
  BackendOptions options;
  options.verbose = false;
  auto backend = make_backend(device, options);
  std::unique_ptr<LoadedModel> lm = load_model(f, *backend);
  Model& model = lm->model;

  const Shape& in_shape = model.input_shape();
  CNN_CHECK(in_shape.rank() == 3 && in_shape[0] == 1, ConfigError,
            "model '{}' reads {} inputs; predict feeds one-channel pictures", model.name(),
            in_shape.str());
  const int rows = static_cast<int>(in_shape[1]), cols = static_cast<int>(in_shape[2]);
  std::vector<InputImage> inputs;
  for (const std::string& path : f.images) read_inputs(path, rows, cols, invert, f.limit, inputs);
  CNN_CHECK(!inputs.empty(), DataError, "no images to classify");

  const Shape& out_shape = model.output_node().shape;
  CNN_CHECK(out_shape.rank() == 1, ConfigError, "model '{}' outputs {}, not class scores",
            model.name(), out_shape.str());
  const int classes = static_cast<int>(out_shape[0]);
  std::vector<std::string> names;
  if (classes == kDatasetClasses) names = viz::class_names(f.dataset);
  for (int i = static_cast<int>(names.size()); i < classes; ++i)
    names.push_back(fmt::format("class {}", i));

  const int64_t n = static_cast<int64_t>(inputs.size());
  const int64_t batch = std::min<int64_t>(f.batch_size, n);
  const int64_t passes = (n + batch - 1) / batch;
  fmt::print("model: {}, device: {}, {} image{} in {} pass{} of at most {}\n", lm->source,
             device.str(), n, n == 1 ? "" : "s", passes, passes == 1 ? "" : "es", batch);
  Executor exec(model, *lm->params, *backend, batch);
  const size_t plane = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const Tensor x_host = Tensor::empty_host(Shape{batch, 1, rows, cols});
  // Every probability, for --csv: 9 significant digits give back the same float.
  const bool want_csv = !f.csv.empty();
  std::string csv;
  if (want_csv) {
    csv = "image";
    for (const std::string& name : names) csv += "," + csv_field(name);
    csv += "\n";
  }
  const Tensor probs_dev = backend->empty(Shape{batch, classes});
  const int top = std::clamp(f.top, 1, classes);
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t k = std::min(batch, n - b);
    for (int64_t i = 0; i < k; ++i)
      std::copy(inputs[static_cast<size_t>(b + i)].pixels.begin(),
                inputs[static_cast<size_t>(b + i)].pixels.end(),
                x_host.host() + static_cast<size_t>(i) * plane);
    const Tensor logits = exec.forward(backend->to_device(x_host.slice_batch(0, k)), false);
    const Tensor probs = probs_dev.slice_batch(0, k);
    if (model.softmax_folded())
      backend->activation_forward(Activation::Softmax, {k, classes, 1}, logits.data(),
                                  probs.data());
    else
      backend->copy(logits, probs);
    const Tensor p = backend->to_host(probs);
    for (int64_t i = 0; i < k; ++i) {
      const float* row = p.host() + i * classes;
      std::vector<int> order(static_cast<size_t>(classes));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return row[a] > row[c]; });
      const InputImage& im = inputs[static_cast<size_t>(b + i)];
      std::string line = fmt::format("{}: {} {:.3f}", im.name, names[static_cast<size_t>(order[0])],
                                     row[order[0]]);
      if (top > 1) {
        std::string rest;
        for (int t = 0; t < top; ++t)
          rest += fmt::format("{}{} {:.3f}", t ? ", " : "", names[static_cast<size_t>(order[t])],
                              row[order[t]]);
        line += fmt::format("  (top {}: {})", top, rest);
      }
      if (!im.note.empty()) line += fmt::format("  [{}]", im.note);
      fmt::print("{}\n", line);
      if (!want_csv) continue;
      csv += csv_field(im.name);
      for (int c = 0; c < classes; ++c) csv += fmt::format(",{:.9g}", row[c]);
      csv += "\n";
    }
  }
  if (want_csv) {
    write_file_atomic(f.csv, csv);
    fmt::print("probabilities of {} images written to {}\n", n, f.csv);
  }

  if (!f.feature_maps.empty()) {
    Tensor first = Tensor::empty_host(Shape{1, 1, rows, cols});
    std::copy(inputs[0].pixels.begin(), inputs[0].pixels.end(), first.host());
    viz::write_feature_maps_png(exec, model, first, f.layer, f.feature_maps);
    fmt::print("feature maps of {} for {} written to {}\n",
               f.layer.empty() ? "the first Conv2D layer" : f.layer, inputs[0].name,
               f.feature_maps);
  }
  return 0;
}

}  // namespace

void add_predict_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "predict", "Classify PNG pictures or the images of an IDX file with trained weights");
  auto f = std::make_shared<PredictFlags>();
  cmd->add_option("--model", f->model, "Model name (see `cnn summary --help`)")
      ->capture_default_str();
  cmd->add_option("--checkpoint", f->checkpoint,
                  "A checkpoint of `cnn train --out/--checkpoint-dir` (holds the model too)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--weights", f->weights, "Weights saved by `cnn train --save` (with --model)")
      ->check(CLI::ExistingFile);
  cmd->add_option("images", f->images,
                  "PNG files (any size, gray or colour; see --invert) or IDX image files")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--device", f->device, "cpu, cuda, cuda:N or auto (GPU if one is usable)")
      ->capture_default_str();
  cmd->add_option("--dataset", f->dataset, "Whose class names to print")
      ->check(CLI::IsMember({"fashion-mnist", "mnist"}))
      ->capture_default_str();
  cmd->add_option("--invert", f->invert,
                  "Make dark-on-light pictures light-on-dark, as the datasets are: auto (PNGs "
                  "whose border is light on average), yes (every input, IDX too), no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))
      ->capture_default_str();
  cmd->add_option("--top", f->top, "How many classes to list per image")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--batch-size", f->batch_size, "Images per forward pass")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--limit", f->limit,
                  "Of each IDX file, classify only the first N images (0: all of them)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--feature-maps", f->feature_maps,
                  "Draw the feature maps of --layer for the first image to this PNG");
  cmd->add_option("--layer", f->layer, "Layer for --feature-maps (default: the first Conv2D)");
  cmd->add_option("--csv", f->csv,
                  "Write every image's class probabilities to this CSV file: the image, then "
                  "one column per class");
  cmd->callback([&run, f] { run = [f] { return run_predict(*f); }; });
}

}  // namespace cnn::app
