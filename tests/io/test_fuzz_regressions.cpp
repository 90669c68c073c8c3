// Inputs the fuzz targets (fuzz/) found to break a reader, kept so they stay refused.
// Each must be refused with a DataError; in the sanitizer build (scripts/test.sh, with
// -fsanitize=float-cast-overflow for gcc) a regression also shows as a sanitizer report.
#include <gtest/gtest.h>

#include <string>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/layers.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/checkpoint.h"
#include "engine/io/png.h"
#include "engine/io/weights_file.h"
#include "engine/train/checkpointing.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/trainer.h"
#include "io/io_test_util.h"

namespace cnn {
namespace {

using iotest::Contains;
using iotest::error_message;
using iotest::ScratchDir;

// A safetensors file: the 8-byte little-endian header length, the header, the data.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((uint64_t{header.size()} >> (8 * i)) & 0xff));
  return out + header + data;
}

void write_string(const std::string& path, const std::string& bytes) {
  iotest::write_raw(path, iotest::Bytes(bytes.begin(), bytes.end()));
}

Model one_dense_layer() {
  Model m("fuzz-regression");
  m.input(Shape{3});
  m.add(layers::dense(2));
  m.finish();
  return m;
}

std::string load_weights_error(const std::string& bytes) {
  ScratchDir dir;
  const std::string path = dir.file("w.safetensors");
  write_string(path, bytes);
  CpuBackend backend;
  const Model m = one_dense_layer();
  Parameters params(m, backend);
  return error_message<DataError>([&] { load_weights(path, m, params); });
}

// fuzz_weights, crash-fa3579af: a dimension beyond uint64, which the JSON parser keeps
// as a double (2.18e20); converting it to int64 was undefined behaviour.
TEST(FuzzRegressions, WeightsShapeThatIsNotAWholeNumber) {
  const std::string data(32, '\0');
  for (const char* shape : {"[218446744073709551615, 3]", "[2.5, 3]", "[2e20, 3]", "[-1e300]"}) {
    const std::string header = std::string(R"({"dense/kernel": {"dtype": "F32", "shape": )") +
                               shape + R"(, "data_offsets": [0, 24]},
        "dense/bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}})";
    EXPECT_FALSE(load_weights_error(safetensors(header, data)).empty()) << shape;
  }
  // The same in the data offsets.
  const std::string header = R"({"dense/kernel": {"dtype": "F32", "shape": [2, 3],
      "data_offsets": [0, 2.4e1]}, "dense/bias": {"dtype": "F32", "shape": [2],
      "data_offsets": [-1e300, 32]}})";
  EXPECT_FALSE(load_weights_error(safetensors(header, data)).empty());
}

// The same numbers in a checkpoint's header (the checkpoint reader reads shapes and
// offsets with its own code).
TEST(FuzzRegressions, CheckpointShapeThatIsNotAWholeNumber) {
  for (const char* entry :
       {R"("shape": [1e20], "data_offsets": [0, 4])", R"("shape": [1.5], "data_offsets": [0, 4])",
        R"("shape": [1], "data_offsets": [0, 4e0])",
        R"("shape": [1], "data_offsets": [-1e300, 4])"}) {
    const std::string header = std::string(R"({"t": {"dtype": "F32", )") + entry + "}}";
    const std::string message = error_message<DataError>(
        [&] { parse_checkpoint(safetensors(header, std::string(4, '\0')), "c.safetensors"); });
    EXPECT_TRUE(Contains(message, "c.safetensors")) << entry;
  }
}

// A header of a few hundred kilobytes of nested arrays: parsing it is fine, but printing
// or comparing it recursed once per level and overflowed the stack.
TEST(FuzzRegressions, HeadersNestedDeeperThanTheFormatAreRefused) {
  const int levels = 200000;
  const std::string deep = std::string(levels, '[') + std::string(levels, ']');
  const std::string in_shape =
      R"({"dense/kernel": {"dtype": "F32", "shape": [-1, )" + deep +
      R"(], "data_offsets": [0, 24]}, "dense/bias": {"dtype": "F32", "shape": [2],
      "data_offsets": [24, 32]}})";
  const std::string in_metadata = R"({"__metadata__": {"model": )" + deep + "}}";
  for (const std::string* header : {&in_shape, &in_metadata}) {
    const std::string file = safetensors(*header, std::string(32, '\0'));
    EXPECT_TRUE(Contains(load_weights_error(file), "nest"));
    const std::string message =
        error_message<DataError>([&] { parse_checkpoint(file, "c.safetensors"); });
    EXPECT_TRUE(Contains(message, "nest"));
  }
  // A tensor entry with a deep extra key, which the checks before the checksum ignore.
  const std::string extra_key =
      R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": )" + deep +
      R"(}, "__metadata__": {"checksum": "crc32:00000000"}})";
  const std::string message = error_message<DataError>(
      [&] { parse_checkpoint(safetensors(extra_key, std::string(4, '\0')), "c.safetensors"); });
  EXPECT_TRUE(Contains(message, "nest"));
}

// Found by feeding fuzz_checkpoint an edited seed (the fuzzer itself did not get there in
// its minutes): a checkpoint with a right checksum whose options or history hold 1e300
// where an integer belongs. Converting that to int was undefined behaviour.
TEST(FuzzRegressions, CheckpointIntegersThatAreNotWholeNumbers) {
  ScratchDir dir;
  CpuBackend backend;
  const Model m = one_dense_layer();
  Parameters params(m, backend);
  params.initialize(1);
  RunInfo run;
  run.model = ModelDescription::of(m, /*from_file=*/true);
  run.options = fit_options_to_json(FitOptions());
  TrainState state;
  state.epoch = 1;
  state.train_samples = 8;
  state.weights = params.snapshot();
  state.schedule = LrSchedule(LrScheduleConfig(), 0.001, 4, 1).state_json();
  state.history.epochs.resize(1);
  state.history.epochs[0].epoch = 1;
  const CheckpointFile good = make_checkpoint(m, params, run, state);
  const auto edited = [&](const std::string& key, const nlohmann::json::json_pointer& at,
                          const nlohmann::json& value) {
    CheckpointFile f = good;
    nlohmann::json j = nlohmann::json::parse(f.metadata.at(key));
    j[at] = value;
    f.metadata[key] = j.dump();
    const std::string path = dir.file("c.safetensors");
    write_checkpoint_file(path, f);
    return path;
  };
  {  // the good file is read, so what follows fails for the edit alone
    const std::string path = edited("options", nlohmann::json::json_pointer("/epochs"), 2);
    EXPECT_NO_THROW(Checkpoint::read(path).state(m, params));
  }
  for (const nlohmann::json& bad :
       {nlohmann::json(1e300), nlohmann::json(2.5), nlohmann::json(uint64_t{1} << 40)}) {
    for (const char* field : {"/epochs", "/batch_size", "/early_stopping/patience",
                              "/lr_schedule/step_epochs", "/augment/max_shift"}) {
      if (bad.is_number_unsigned() && std::string(field) == "/batch_size") continue;  // fits
      const std::string path = edited("options", nlohmann::json::json_pointer(field), bad);
      EXPECT_FALSE(error_message<DataError>([&] { Checkpoint::read(path); }).empty())
          << field << " = " << bad.dump();
    }
    for (const auto& [key, field] :
         {std::pair{"history", "/epochs/0/epoch"}, std::pair{"history", "/best_epoch"},
          std::pair{"early_stopping_state", "/wait"}, std::pair{"lr_schedule_state", "/wait"}}) {
      const std::string path = edited(key, nlohmann::json::json_pointer(field), bad);
      EXPECT_FALSE(
          error_message<DataError>([&] { Checkpoint::read(path).state(m, params); }).empty())
          << key << field << " = " << bad.dump();
    }
  }
}

// A 1x1 PNG whose second chunk, tEXt, claims 0x7a00000a bytes with 22 behind it: libpng
// allocated and touched 2 GB for it before finding the data missing.
TEST(FuzzRegressions, PngChunkClaimingTwoGigabytes) {
  const std::string bytes(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52"
      "\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x01\x4d\x79\xab"
      "\xc3\x7a\x00\x00\x0a\x74\x45\x58\x74\x78\x9c\x63\xa8\x07\x00\x00"
      "\x81\x00\x80\xd3\x94\x53\x4a\x00\x00\x00\x00\x49\x45\x4e\x44\xae"
      "\x42\x60\x82",
      67);
  const std::string msg = error_message<DataError>([&] { decode_png(bytes, "fuzz.png"); });
  EXPECT_TRUE(Contains(msg, "tEXt chunk at byte 33 claims 2046820362 bytes")) << msg;
}

}  // namespace
}  // namespace cnn
