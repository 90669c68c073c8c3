// Fuzz target: the safetensors weights readers of engine/io/weights_file.h, against
// fuzz/fuzz_models.h's tiny model: load_weights (cnn evaluate --weights), and TensorFile
// with load_weights_by_name (transfer learning), with and without skip_mismatch.
//
// Any input must either load, or be refused with cnn::DataError leaving every parameter
// as it was (both loads check the whole file before writing anything). A file that
// load_weights accepts must save and load back to the same bits.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/parameters.h"
#include "engine/io/weights_file.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/fuzz_models.h"

namespace {

using cnn::fuzz::same_bits;

struct Harness : cnn::fuzz::TinyParams {
  cnn::fuzz::ScratchFile input{"weights"};
  cnn::fuzz::ScratchFile resaved{"weights-resaved"};
};

// The file as a TensorFile, then loaded by layer name.
void by_name(Harness& h, const std::string& path) {
  std::optional<cnn::TensorFile> file;
  try {
    file.emplace(cnn::TensorFile::read(path));
  } catch (const cnn::DataError&) {
    return;
  }
  std::vector<float> values;
  for (const auto& [name, info] : file->tensors()) {
    CNN_FUZZ_ASSERT(info.begin <= info.end);
    if (info.dtype != "F32") continue;
    values.assign(static_cast<size_t>(info.shape.numel()), 0.0f);
    CNN_FUZZ_ASSERT(values.size() * sizeof(float) == info.end - info.begin);
    file->read_f32(name, values.data());
  }
  for (const bool skip : {false, true}) {
    h.params.restore(h.baseline);
    try {
      cnn::LoadByNameOptions options;
      options.skip_mismatch = skip;
      (void)cnn::load_weights_by_name(*file, h.model, h.params, options).str();
    } catch (const cnn::DataError&) {
      CNN_FUZZ_ASSERT(same_bits(h.params.snapshot(), h.baseline));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  const std::string& path = h.input.write(data, size);
  by_name(h, path);

  h.params.restore(h.baseline);
  try {
    cnn::load_weights(path, h.model, h.params);
  } catch (const cnn::DataError&) {
    CNN_FUZZ_ASSERT(same_bits(h.params.snapshot(), h.baseline));
    return 0;
  }
  const cnn::Parameters::Snapshot loaded = h.params.snapshot();
  cnn::save_weights(h.resaved.path(), h.model, h.params);
  h.params.restore(h.baseline);
  cnn::load_weights(h.resaved.path(), h.model, h.params);
  CNN_FUZZ_ASSERT(same_bits(h.params.snapshot(), loaded));
  return 0;
}
