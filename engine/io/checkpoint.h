// The checkpoint file: the safetensors format (an 8-byte little-endian header length, a
// JSON header, then raw little-endian float32 tensors), so Python's `safetensors` and
// PyTorch read it. The header's "__metadata__" is a flat string -> string map, as the
// format requires; structured values (options, history) are JSON text inside strings.
//
// This layer knows names, shapes, bytes and metadata, nothing of models or training
// (engine/train/checkpointing.h maps a run's state to and from it). Besides what the
// format checks, every file carries a CRC-32 of its header and data in the metadata key
// "checksum", so a flipped bit is refused rather than resumed from.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cnn {

struct CheckpointFile {
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;  // row-major, numel(shape) of them
  };
  std::map<std::string, std::string> metadata;
  std::vector<Tensor> tensors;  // written in this order
  // Read back: whether the file carried a checksum (it then matched). Files of other
  // writers (save_weights, Python) have none.
  bool checksummed = false;

  const Tensor* find(const std::string& name) const;
  // The metadata value, or a DataError naming `path` and the key when it is absent.
  const std::string& meta(const std::string& key, const std::string& path) const;
};

// The metadata key of the checksum (written and checked by the functions below).
inline constexpr const char* kChecksumKey = "checksum";

// Serialises the file (tensors contiguous in the given order, the header padded with
// spaces to a multiple of 8 bytes) and writes it atomically: a kill at any moment leaves
// either the old file or the new one at `path`, never a torn one.
void write_checkpoint_file(const std::string& path, const CheckpointFile& file);
std::string serialize_checkpoint(const CheckpointFile& file);

// Reads and checks a file: the header, every tensor's dtype (F32), shape and byte range
// (contiguous, covering the data exactly, as the format requires), the metadata's types
// and, when there is one, the checksum. Throws cnn::DataError naming `path` and what is
// wrong.
CheckpointFile read_checkpoint_file(const std::string& path);
CheckpointFile parse_checkpoint(const std::string& bytes, const std::string& path);

// Parses JSON whose objects and arrays nest at most max_depth levels (the top level is
// level 1): deeper input throws DataError("nests deeper than N levels") during the
// parse, before anything recursive (printing, comparing) can overflow the stack. Bad
// JSON throws nlohmann::json::parse_error.
nlohmann::json parse_json_bounded(const std::string& text, int max_depth);

}  // namespace cnn
