// Fuzz target: the JSON model-file reader (engine/graph/model_file.h).
//
// Any text must either build a finished model or be refused with cnn::ConfigError (the
// reader's error for a bad description). A model that builds must print its summary,
// count its parameters, and survive the round trip through model_to_json: the text it
// writes reads back into a model that writes the same text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/core/error.h"
#include "engine/graph/model.h"
#include "engine/graph/model_file.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cnn::Model model;
  try {
    model = cnn::model_from_json_text(text, "fuzz.json");
  } catch (const cnn::ConfigError&) {
    return 0;
  }
  CNN_FUZZ_ASSERT(model.finished());
  CNN_FUZZ_ASSERT(model.count_params() >= 0);
  (void)cnn::summary(model);

  const std::string written = cnn::model_to_json(model);
  const cnn::Model again = cnn::model_from_json_text(written, "fuzz-again.json");
  CNN_FUZZ_ASSERT(cnn::model_to_json(again) == written);
  CNN_FUZZ_ASSERT(again.count_params(true) == model.count_params(true));
  CNN_FUZZ_ASSERT(again.count_params(false) == model.count_params(false));
  CNN_FUZZ_ASSERT(again.name() == model.name());
  return 0;
}
