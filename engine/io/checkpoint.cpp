#include "engine/io/checkpoint.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/byte_order.h"

namespace cnn {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the safetensors format's own limit

bool host_is_little_endian() {
  const uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// CRC-32 (zlib's) over the canonical header text (the sorted JSON without the checksum)
// and then the data bytes.
uint32_t checksum(const std::string& header_text, const char* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(header_text.data()),
              static_cast<uInt>(header_text.size()));
  // zlib takes uInt lengths: feed large data in pieces.
  constexpr size_t kPiece = size_t(1) << 30;
  for (size_t done = 0; done < size; done += kPiece) {
    const size_t n = std::min(kPiece, size - done);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data + done), static_cast<uInt>(n));
  }
  return static_cast<uint32_t>(crc);
}

std::string checksum_text(uint32_t crc) { return fmt::format("crc32:{:08x}", crc); }

}  // namespace

nlohmann::json parse_json_bounded(const std::string& text, int max_depth) {
  using Event = nlohmann::json::parse_event_t;
  const nlohmann::json::parser_callback_t limit = [max_depth](int depth, Event event,
                                                              nlohmann::json&) {
    if ((event == Event::object_start || event == Event::array_start) && depth >= max_depth)
      throw DataError(fmt::format("nests deeper than {} levels", max_depth));
    return true;
  };
  return nlohmann::json::parse(text, limit);
}

const CheckpointFile::Tensor* CheckpointFile::find(const std::string& name) const {
  for (const Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const std::string& CheckpointFile::meta(const std::string& key, const std::string& path) const {
  const auto it = metadata.find(key);
  if (it == metadata.end())
    throw DataError(
        fmt::format("checkpoint '{}' is not usable: its metadata lacks '{}'", path, key));
  return it->second;
}

std::string serialize_checkpoint(const CheckpointFile& file) {
  CNN_CHECK(host_is_little_endian(), Error, "checkpoints are written on little-endian hosts only");
  // nlohmann::json keeps keys sorted: the dump is canonical, which the checksum relies on.
  nlohmann::json header = nlohmann::json::object();
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [k, v] : file.metadata) {
    CNN_CHECK(k != kChecksumKey, Error, "the metadata key '{}' is reserved", k);
    meta[k] = v;
  }
  header["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const CheckpointFile::Tensor& t : file.tensors) {
    CNN_CHECK(t.name != "__metadata__" && !t.name.empty() && !header.contains(t.name), Error,
              "checkpoint tensor name '{}' is empty, reserved or repeated", t.name);
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    CNN_CHECK(numel == static_cast<int64_t>(t.values.size()), Error,
              "checkpoint tensor '{}' has {} values for a shape of {}", t.name, t.values.size(),
              numel);
    const uint64_t bytes = static_cast<uint64_t>(numel) * sizeof(float);
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string data;
  data.reserve(static_cast<size_t>(offset));
  for (const CheckpointFile::Tensor& t : file.tensors)
    data.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
  header["__metadata__"][kChecksumKey] =
      checksum_text(checksum(header.dump(), data.data(), data.size()));
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data 8-byte aligned
  std::string out;
  out.reserve(8 + text.size() + data.size());
  append_little_endian_u64(out, text.size());
  out += text;
  out += data;
  return out;
}

void write_checkpoint_file(const std::string& path, const CheckpointFile& file) {
  write_file_atomic(path, serialize_checkpoint(file));
}

CheckpointFile parse_checkpoint(const std::string& bytes, const std::string& path) {
  const auto bad = [&](const std::string& why) {
    return DataError(fmt::format("checkpoint '{}' is not usable: {}", path, why));
  };
  CNN_CHECK(host_is_little_endian(), Error, "checkpoints are read on little-endian hosts only");
  if (bytes.size() < 8)
    throw bad(fmt::format("{} bytes is too short for a safetensors header", bytes.size()));
  const uint64_t header_len = little_endian_u64(bytes.data());
  if (header_len > kMaxHeader || header_len > bytes.size() - 8)
    throw bad(
        fmt::format("the header length {} exceeds the file ({} bytes): truncated or not "
                    "a safetensors file",
                    header_len, bytes.size()));
  // The header: a JSON object, then only spaces (the padding to 8 bytes).
  std::string text = bytes.substr(8, static_cast<size_t>(header_len));
  const size_t last = text.find_last_not_of(' ');
  if (text.empty() || text[0] != '{' || last == std::string::npos || text[last] != '}')
    throw bad("the header is not a JSON object padded with spaces");
  if (text.find('\0') != std::string::npos) throw bad("the header holds a NUL byte");
  text.resize(last + 1);
  nlohmann::json header;
  try {
    // The format nests three levels (header, tensor entry, shape); deeper input would make
    // the recursive printing and comparing of the JSON overflow the stack.
    header = parse_json_bounded(text, 3);
  } catch (const nlohmann::json::exception& e) {
    throw bad(fmt::format("the header is not valid JSON ({})", e.what()));
  } catch (const DataError& e) {
    throw bad("the header " + e.message());
  }
  if (!header.is_object()) throw bad("the header is not a JSON object");
  const uint64_t data_size = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;

  CheckpointFile file;
  std::string stored_checksum;
  if (header.contains("__metadata__")) {
    nlohmann::json& meta = header["__metadata__"];
    if (!meta.is_object()) throw bad("__metadata__ is not a JSON object");
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      if (!it.value().is_string())
        throw bad(fmt::format("metadata '{}' is not a string (the format allows only strings)",
                              it.key()));
      if (it.key() == kChecksumKey)
        stored_checksum = it.value().get<std::string>();
      else
        file.metadata[it.key()] = it.value().get<std::string>();
    }
    meta.erase(kChecksumKey);
  }

  struct Range {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const nlohmann::json& t = it.value();
    CheckpointFile::Tensor out;
    out.name = name;
    uint64_t begin = 0, end = 0;
    try {
      const std::string dtype = t.at("dtype").get<std::string>();
      if (dtype != "F32")
        throw bad(fmt::format("tensor '{}' has dtype {}, only F32 is supported", name, dtype));
      uint64_t numel = 1;
      const nlohmann::json& shape = t.at("shape");
      if (!shape.is_array()) throw bad(fmt::format("tensor '{}' has no shape array", name));
      for (const nlohmann::json& d : shape) {
        // Whole numbers only: the parser keeps 2.5, 1e20 and anything beyond 64 bits as
        // doubles, whose conversion would be wrong or undefined.
        if (!d.is_number_unsigned())
          throw bad(fmt::format("tensor '{}' has an impossible shape {}", name, shape.dump()));
        const uint64_t v = d.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
            (v > 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / v))
          throw bad(fmt::format("tensor '{}' has an impossible shape {}", name, shape.dump()));
        out.shape.push_back(static_cast<int64_t>(v));
        numel *= v;
      }
      const nlohmann::json& range = t.at("data_offsets");
      if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() ||
          !range[1].is_number_unsigned() || range[1].get<uint64_t>() < range[0].get<uint64_t>())
        throw bad(fmt::format("tensor '{}' has malformed data offsets {}", name, range.dump()));
      const std::vector<uint64_t> offsets = {range[0].get<uint64_t>(), range[1].get<uint64_t>()};
      begin = offsets[0];
      end = offsets[1];
      if (end - begin != numel * sizeof(float))
        throw bad(fmt::format("tensor '{}' spans {} bytes, its shape {} needs {}", name,
                              end - begin, t.at("shape").dump(), numel * sizeof(float)));
      if (end > data_size)
        throw bad(
            fmt::format("tensor '{}' ends at byte {} of the data, which holds only {} "
                        "(the file is truncated)",
                        name, end, data_size));
    } catch (const nlohmann::json::exception& e) {
      throw bad(fmt::format("tensor '{}' has a malformed entry ({})", name, e.what()));
    }
    ranges.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(out));
  }
  // As the format requires: the tensors tile the data exactly, with no gap or overlap.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t expect = 0;
  for (const Range& r : ranges) {
    if (r.begin != expect)
      throw bad(fmt::format("tensor '{}' starts at byte {}, expected {} (a gap or an overlap)",
                            file.tensors[r.tensor].name, r.begin, expect));
    expect = r.end;
  }
  if (expect != data_size)
    throw bad(fmt::format("the tensors cover {} bytes but the data holds {} (extra bytes)", expect,
                          data_size));
  file.checksummed = !stored_checksum.empty();
  const std::string actual =
      file.checksummed ? checksum_text(checksum(header.dump(), data, data_size)) : "";
  if (actual != stored_checksum)
    throw bad(
        fmt::format("its checksum does not match ({} stored, {} computed): the file is "
                    "corrupt",
                    stored_checksum, actual));
  // Tensors in file order (by offset), as written.
  std::vector<CheckpointFile::Tensor> ordered;
  ordered.reserve(file.tensors.size());
  for (const Range& r : ranges) {
    CheckpointFile::Tensor& t = file.tensors[r.tensor];
    t.values.resize(static_cast<size_t>((r.end - r.begin) / sizeof(float)));
    if (!t.values.empty()) std::memcpy(t.values.data(), data + r.begin, r.end - r.begin);
    ordered.push_back(std::move(t));
  }
  file.tensors = std::move(ordered);
  return file;
}

CheckpointFile read_checkpoint_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in, DataError, "cannot open checkpoint '{}'", path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CNN_CHECK(!in.bad(), DataError, "cannot read checkpoint '{}'", path);
  return parse_checkpoint(bytes, path);
}

}  // namespace cnn
