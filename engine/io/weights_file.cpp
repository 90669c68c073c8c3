#include "engine/io/weights_file.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"

namespace cnn {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the safetensors format's own limit

void put_u64_le(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64_le(const std::string& s) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
  return v;
}

}  // namespace

void save_weights(const std::string& path, const Model& model, const Parameters& params) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "cnn-engine"}, {"model", model.name()}};
  uint64_t offset = 0;
  std::string data;
  std::vector<float> host;
  for (const auto& e : params.entries()) {
    const uint64_t bytes = static_cast<uint64_t>(e.value.numel()) * sizeof(float);
    header[e.name] = {{"dtype", "F32"},
                      {"shape", e.value.shape().dims()},
                      {"data_offsets", {offset, offset + bytes}}};
    host.resize(static_cast<size_t>(e.value.numel()));
    params.read(e, host.data());
    data.append(reinterpret_cast<const char*>(host.data()), bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data 8-byte aligned
  std::string out;
  put_u64_le(out, text.size());
  out += text;
  out += data;
  write_file_atomic(path, out);
}

void load_weights(const std::string& path, const Model& model, Parameters& params) {
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in, DataError, "cannot open weights file '{}'", path);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto bad = [&](const std::string& why) {
    return DataError(fmt::format("weights file '{}' is not usable: {}", path, why));
  };
  if (file.size() < 8) throw bad(fmt::format("{} bytes is too short for a header", file.size()));
  const uint64_t header_len = get_u64_le(file);
  if (header_len > kMaxHeader || header_len > file.size() - 8)
    throw bad(fmt::format("header length {} exceeds the file ({} bytes)", header_len, file.size()));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.substr(8, header_len));
  } catch (const nlohmann::json::exception& e) {
    throw bad(fmt::format("header is not valid JSON ({})", e.what()));
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  const uint64_t data_size = file.size() - 8 - header_len;
  const char* data = file.data() + 8 + header_len;

  if (header.contains("__metadata__") && header["__metadata__"].contains("model")) {
    const auto& saved = header["__metadata__"]["model"];
    if (!saved.is_string() || saved.get<std::string>() != model.name())
      throw bad(fmt::format("it holds weights of model {}, not '{}'", saved.dump(), model.name()));
  }
  size_t tensors = 0;
  for (auto it = header.begin(); it != header.end(); ++it)
    if (it.key() != "__metadata__") ++tensors;
  if (tensors != params.entries().size())
    throw bad(fmt::format("it holds {} tensors, model '{}' has {}", tensors, model.name(),
                          params.entries().size()));

  // Check everything before writing anything, so a bad file leaves the model untouched.
  std::vector<std::pair<const Parameters::Entry*, const char*>> plan;
  for (const auto& e : params.entries()) {
    if (!header.contains(e.name)) throw bad(fmt::format("tensor '{}' is missing", e.name));
    const auto& t = header[e.name];
    try {
      if (t.at("dtype").get<std::string>() != "F32")
        throw bad(
            fmt::format("tensor '{}' has dtype {}, expected F32", e.name, t.at("dtype").dump()));
      const auto dims = t.at("shape").get<std::vector<int64_t>>();
      if (Shape(dims) != e.value.shape())
        throw bad(fmt::format("tensor '{}' has shape {}, the model expects {}", e.name,
                              Shape(dims).str(), e.value.shape().str()));
      const auto offsets = t.at("data_offsets").get<std::vector<uint64_t>>();
      const uint64_t bytes = static_cast<uint64_t>(e.value.numel()) * sizeof(float);
      if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != bytes ||
          offsets[1] > data_size)
        throw bad(fmt::format("tensor '{}' has data offsets {} outside the {} data bytes", e.name,
                              t.at("data_offsets").dump(), data_size));
      plan.emplace_back(&e, data + offsets[0]);
    } catch (const nlohmann::json::exception& ex) {
      throw bad(fmt::format("tensor '{}' has a malformed entry ({})", e.name, ex.what()));
    }
  }
  std::vector<float> host;
  for (const auto& [entry, src] : plan) {
    host.resize(static_cast<size_t>(entry->value.numel()));
    std::memcpy(host.data(), src, host.size() * sizeof(float));
    params.write(*entry, host.data());
  }
}

}  // namespace cnn
