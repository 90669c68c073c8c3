// Writes the seed corpora of the fuzz targets: a few tiny valid files each, from which
// the fuzzer mutates. The checked-in fuzz/corpus/ was made with
//   fuzz_seeds fuzz/corpus
// (scripts/fuzz.sh seeds); rerun it when fuzz/fuzz_models.h changes.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/graph/model_file.h"
#include "engine/graph/parameters.h"
#include "engine/io/checkpoint.h"
#include "engine/io/png.h"
#include "engine/io/weights_file.h"
#include "engine/train/checkpointing.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/trainer.h"
#include "fuzz/fuzz_models.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::string;

Bytes idx(uint32_t magic, const std::vector<uint32_t>& dims) {
  Bytes out;
  const auto put = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  put(magic);
  uint32_t n = 1;
  for (uint32_t d : dims) {
    put(d);
    n *= d;
  }
  for (uint32_t i = 0; i < n; ++i) out.push_back(static_cast<char>(i * 37 % 256));
  return out;
}

void write(const fs::path& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

void write_gz(const fs::path& path, const Bytes& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb9");
  if (!gz ||
      gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) !=
          static_cast<int>(bytes.size()) ||
      gzclose(gz) != Z_OK)
    throw std::runtime_error("cannot write " + path.string());
}

Bytes read(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void idx_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  write(dir / "labels-5", idx(0x00000801, {5}));
  write(dir / "images-2x3x3", idx(0x00000803, {2, 3, 3}));
  write(dir / "matrix-2x2", idx(0x00000802, {2, 2}));
  write(dir / "rank4-1x1x2x2", idx(0x00000804, {1, 1, 2, 2}));
  write_gz(dir / "labels-5.gz", idx(0x00000801, {5}));
  write_gz(dir / "images-2x3x3.gz", idx(0x00000803, {2, 3, 3}));
}

void weights_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  cnn::CpuBackend backend;
  cnn::Model model = cnn::fuzz::tiny_model();
  cnn::Parameters params(model, backend);
  params.initialize(1);
  const fs::path valid = dir / "tiny.safetensors";
  cnn::save_weights(valid.string(), model, params);

  // The same tensors with the header laid out differently: no metadata, indented JSON,
  // padded to 8 bytes as the writer does.
  const Bytes file = read(valid);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(file[static_cast<size_t>(i)]);
  nlohmann::json header = nlohmann::json::parse(file.substr(8, n));
  header.erase("__metadata__");
  std::string text = header.dump(1);
  while (text.size() % 8) text.push_back(' ');
  Bytes out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((uint64_t{text.size()} >> (8 * i)) & 0xff));
  out += text;
  out += file.substr(8 + n);
  write(dir / "tiny-no-metadata.safetensors", out);
}

// Two checkpoints of the tiny model: after one epoch of Adam with early stopping's best
// weights kept, and after two epochs of SGD with momentum, without validation data.
void checkpoint_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  cnn::CpuBackend backend;
  const cnn::Model model = cnn::fuzz::tiny_model();
  cnn::Parameters params(model, backend);
  params.initialize(1);
  cnn::RunInfo run;
  run.model = cnn::ModelDescription::of(model, /*from_file=*/true);
  run.seed = 1;
  cnn::FitOptions options;
  options.epochs = 3;
  options.batch_size = 2;
  options.validation_split = 0.2;
  options.early_stopping.enabled = true;
  options.early_stopping.patience = 1;
  run.options = cnn::fit_options_to_json(options);
  run.data = {{"dir", "data/fashion-mnist"}, {"limit", 10}};

  cnn::TrainState adam;
  adam.epoch = 1;
  adam.iterations = 5;
  adam.train_samples = 10;
  adam.weights = params.snapshot();
  for (const char* slot : {"m", "v"})
    adam.optimizer_slots.push_back({slot, std::vector<float>(adam.weights.values.size(), 0.25f)});
  options.lr_schedule.kind = cnn::LrScheduleKind::Plateau;
  run.options = cnn::fit_options_to_json(options);
  adam.schedule = cnn::LrSchedule(options.lr_schedule, 0.001, 5, options.epochs).state_json();
  adam.stopping = {0.5, 1, 0};
  adam.best_weights = adam.weights;
  cnn::EpochLog log;
  log.epoch = 1;
  log.loss = 0.5;
  log.accuracy = 0.75;
  log.val_loss = 0.6;
  log.val_accuracy = 0.7;
  log.lr = 0.001;
  log.seconds = 0.01;
  adam.history.epochs = {log};
  adam.history.best_epoch = 1;
  cnn::write_checkpoint_file((dir / "tiny-adam-epoch1.safetensors").string(),
                             cnn::make_checkpoint(model, params, run, adam));

  cnn::TrainState sgd;
  sgd.epoch = 2;
  sgd.iterations = 10;
  sgd.train_samples = 10;
  sgd.weights = params.snapshot();
  sgd.schedule = cnn::LrSchedule(cnn::LrScheduleConfig(), 0.01, 5, 2).state_json();
  sgd.optimizer_slots.push_back({"momentum", std::vector<float>(sgd.weights.values.size(), -1.0f)});
  log.val_loss.reset();
  log.val_accuracy.reset();
  sgd.history.epochs = {log, log};
  sgd.history.epochs[1].epoch = 2;
  options = cnn::FitOptions();
  options.epochs = 2;
  options.optimizer.kind = cnn::OptimizerKind::Sgd;
  options.optimizer.momentum = 0.9f;
  run.options = cnn::fit_options_to_json(options);
  cnn::write_checkpoint_file((dir / "tiny-sgd-epoch2.safetensors").string(),
                             cnn::make_checkpoint(model, params, run, sgd));

  // A weights file, which cnn evaluate --checkpoint also reads.
  cnn::save_weights((dir / "tiny-weights.safetensors").string(), model, params);
}

// Small descriptions that use every layer type and every form of every key.
void model_file_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  const std::pair<const char*, const char*> files[] = {
      {"sequential.json", R"({
  "name": "seq",
  "input": [1, 8, 8],
  "layers": [
    {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 0.001},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "SpatialDropout2D", "rate": 0.1},
    {"type": "Conv2D", "filters": 3, "kernel_size": [3, 1], "strides": [1, 2],
     "padding": [[0, 1], [1, 0]], "dilation_rate": 1, "use_bias": false, "trainable": false},
    {"type": "AveragePooling2D", "pool_size": [2, 1], "strides": 1, "padding": "same"},
    {"type": "Activation", "activation": "tanh"},
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.5},
    {"type": "Dense", "units": 4, "activation": "softmax"}
  ]
}
)"},
      {"branches.json", R"({
  "input": {"shape": [2, 6, 6], "name": "img"},
  "layers": [
    {"type": "Conv2D", "name": "a", "filters": 2, "kernel_size": 1, "inputs": "img"},
    {"type": "Conv2D", "name": "b", "filters": 2, "kernel_size": 3, "padding": "same",
     "inputs": ["img"], "activation": "sigmoid"},
    {"type": "Add", "name": "sum", "inputs": ["a", "b"]},
    {"type": "Concatenate", "axis": -1, "inputs": ["sum", "img"]},
    {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "valid"},
    {"type": "Flatten"},
    {"type": "Dense", "name": "out", "units": 3, "activation": null}
  ],
  "output": "out"
}
)"},
      {"dense.json", R"({"name": "mlp", "input": [5], "layers": [
  {"type": "Dense", "units": 3, "activation": "relu", "use_bias": true},
  {"type": "Dense", "units": 2, "activation": "linear"}]}
)"},
  };
  for (const auto& [name, text] : files) {
    (void)cnn::model_from_json_text(text, name);  // a seed must be valid
    write(dir / name, text);
  }
  // And the tiny model as the writer lays it out.
  write(dir / "tiny-written.json", cnn::model_to_json(cnn::fuzz::tiny_model()));
}

// A PNG laid out by hand, for the depths and colour types the engine's encoder never
// writes: IHDR as given, then `extra` chunks, then one IDAT of `rows` (each row's filter
// byte 0 and its packed samples), then IEND.
Bytes png_chunk(const char* type, const Bytes& data) {
  Bytes out;
  const auto put = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  put(static_cast<uint32_t>(data.size()));
  const Bytes body = std::string(type) + data;
  out += body;
  put(static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
  return out;
}
Bytes hand_png(uint32_t w, uint32_t h, int depth, int color_type, int interlace, const Bytes& rows,
               const Bytes& extra = {}) {
  Bytes ihdr;
  for (uint32_t v : {w, h})
    for (int shift = 24; shift >= 0; shift -= 8) ihdr.push_back(static_cast<char>(v >> shift));
  for (int v : {depth, color_type, 0, 0, interlace}) ihdr.push_back(static_cast<char>(v));
  uLongf packed = compressBound(static_cast<uLong>(rows.size()));
  Bytes z(packed, '\0');
  if (compress(reinterpret_cast<Bytef*>(z.data()), &packed,
               reinterpret_cast<const Bytef*>(rows.data()),
               static_cast<uLong>(rows.size())) != Z_OK)
    throw std::runtime_error("zlib compress failed");
  z.resize(packed);
  return "\x89PNG\r\n\x1a\n" + png_chunk("IHDR", ihdr) + extra + png_chunk("IDAT", z) +
         png_chunk("IEND", {});
}

void png_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  // What the engine writes: 8-bit gray, gray + alpha, RGB, RGBA.
  for (int channels = 1; channels <= 4; ++channels) {
    const int w = channels == 1 ? 28 : 3 + channels, h = channels == 1 ? 28 : 4;
    cnn::Image8 img(w, h, channels);
    for (size_t i = 0; i < img.pixels.size(); ++i)
      img.pixels[i] = static_cast<uint8_t>(i * 29 % 256);
    write(dir / ("engine-" + std::to_string(channels) + "ch.png"), cnn::encode_png(img));
  }
  // By hand: 2-bit palette with transparency, 16-bit gray, 1-bit gray, 16-bit RGB with
  // a gamma chunk, and an interlaced 8-bit gray (Adam7; a 1x1 image is all pass 1).
  write(dir / "palette-2bit.png",
        hand_png(4, 2, 2, 3, 0, Bytes("\x00\x1b\x00\xe4", 4),
                 png_chunk("PLTE", Bytes("\x00\x00\x00\xff\x00\x00\x00\xff\x00\xff\xff\xff", 12)) +
                     png_chunk("tRNS", Bytes("\x00\x80", 2))));
  write(dir / "gray-16bit.png", hand_png(3, 2, 16, 0, 0,
                                         Bytes("\x00\x00\x00\x80\x00\xff\xff"
                                               "\x00\x12\x34\x56\x78\x9a\xbc",
                                               14)));
  write(dir / "gray-1bit.png", hand_png(9, 2, 1, 0, 0, Bytes("\x00\xaa\x80\x00\x55\x00", 6)));
  write(dir / "rgb-16bit-gama.png",
        hand_png(2, 1, 16, 2, 0, Bytes("\x00\xff\xff\x00\x00\x80\x00\x00\x00\xff\xff\x12\x34", 13),
                 png_chunk("gAMA", Bytes("\x00\x00\xb1\x8f", 4))));
  write(dir / "gray-interlaced.png", hand_png(1, 1, 8, 0, 1, Bytes("\x00\x7f", 2)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR  (writes CORPUS_DIR/<target>/ for each target)\n",
                 argv[0]);
    return 1;
  }
  try {
    idx_seeds(fs::path(argv[1]) / "idx");
    weights_seeds(fs::path(argv[1]) / "weights");
    checkpoint_seeds(fs::path(argv[1]) / "checkpoint");
    model_file_seeds(fs::path(argv[1]) / "model_file");
    png_seeds(fs::path(argv[1]) / "png");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
