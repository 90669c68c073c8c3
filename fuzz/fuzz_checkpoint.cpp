// Fuzz target: the checkpoint readers, engine/io/checkpoint.h (the safetensors file with
// its metadata and checksum) and engine/train/checkpointing.h (the run's state in it:
// cnn train --resume, cnn evaluate --checkpoint), against fuzz/fuzz_models.h's model.
//
// Any input must either be read, or be refused with cnn::DataError, and a refused load
// leaves the parameters as they were. A file that parses must serialize and parse back
// to the same metadata and the same tensor bits.
//
// The reader refuses a file whose CRC-32 does not match, which nearly every mutation
// breaks; so that the fuzzer also reaches what lies behind that check, each input whose
// header parses is tried a second time with its checksum made right, computed as
// engine/io/checkpoint.cpp does (zlib's CRC-32 of the sorted header JSON without the
// checksum, then of the data).
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/parameters.h"
#include "engine/io/checkpoint.h"
#include "engine/train/checkpointing.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/fuzz_models.h"

namespace {

using cnn::fuzz::same_bits;

struct Harness : cnn::fuzz::TinyParams {
  cnn::fuzz::ScratchFile input{"checkpoint"};
};

// The input with a checksum that matches, or nothing when its header does not parse.
std::optional<std::string> with_matching_checksum(const std::string& bytes) {
  if (bytes.size() < 8) return std::nullopt;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (n > bytes.size() - 8) return std::nullopt;
  nlohmann::json header;
  try {  // bounded as the reader's own parse is, so that dump() below cannot recurse deeply
    header = cnn::parse_json_bounded(bytes.substr(8, n), 3);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  } catch (const cnn::DataError&) {
    return std::nullopt;
  }
  if (!header.is_object()) return std::nullopt;
  nlohmann::json& meta = header["__metadata__"];
  if (meta.is_null()) meta = nlohmann::json::object();
  if (!meta.is_object()) return std::nullopt;
  meta.erase(cnn::kChecksumKey);
  const std::string data = bytes.substr(8 + n);
  const std::string canonical = header.dump();
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(canonical.data()),
              static_cast<uInt>(canonical.size()));
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  char text[32];
  std::snprintf(text, sizeof text, "crc32:%08lx", static_cast<unsigned long>(crc & 0xffffffffu));
  meta[cnn::kChecksumKey] = text;
  const std::string out_header = header.dump();
  std::string out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((uint64_t{out_header.size()} >> (8 * i)) & 0xff));
  return out + out_header + data;
}

// The file layer: parse, and for what parses, the round trip through the writer.
void file_layer(const std::string& bytes) {
  cnn::CheckpointFile file;
  try {
    file = cnn::parse_checkpoint(bytes, "fuzz");
  } catch (const cnn::DataError&) {
    return;
  }
  std::string again_bytes;
  try {
    again_bytes = cnn::serialize_checkpoint(file);
  } catch (const cnn::Error&) {
    return;  // the writer refuses some names the reader accepts ("" for one)
  }
  const cnn::CheckpointFile again = cnn::parse_checkpoint(again_bytes, "fuzz-again");
  CNN_FUZZ_ASSERT(again.checksummed);
  CNN_FUZZ_ASSERT(again.metadata == file.metadata);
  CNN_FUZZ_ASSERT(again.tensors.size() == file.tensors.size());
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    CNN_FUZZ_ASSERT(again.tensors[i].name == file.tensors[i].name);
    CNN_FUZZ_ASSERT(again.tensors[i].shape == file.tensors[i].shape);
    CNN_FUZZ_ASSERT(same_bits(again.tensors[i].values, file.tensors[i].values));
  }
}

// The run layer: read as cnn train --resume and cnn evaluate --checkpoint do.
void run_layer(Harness& h, const std::string& bytes) {
  const std::string& path =
      h.input.write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  std::optional<cnn::Checkpoint> c;
  try {
    c.emplace(cnn::Checkpoint::read(path, /*allow_weights_file=*/true));
  } catch (const cnn::DataError&) {
    return;
  }
  (void)c->run();
  h.params.restore(h.baseline);
  try {
    c->check_model(h.model, h.params);
    if (!c->is_weights_file()) (void)c->state(h.model, h.params);
  } catch (const cnn::DataError&) {
  }
  try {
    c->load_weights(h.model, h.params);
  } catch (const cnn::DataError&) {
    CNN_FUZZ_ASSERT(same_bits(h.params.snapshot(), h.baseline));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  file_layer(bytes);
  run_layer(h, bytes);
  if (const auto fixed = with_matching_checksum(bytes); fixed && *fixed != bytes) {
    file_layer(*fixed);
    run_layer(h, *fixed);
  }
  return 0;
}
