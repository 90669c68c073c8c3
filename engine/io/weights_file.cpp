#include "engine/io/weights_file.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/byte_order.h"
#include "engine/io/checkpoint.h"

namespace cnn {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the safetensors format's own limit
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
  append_little_endian_u64(out, text.size());
  out += text;
  out += data;
  write_file_atomic(path, out);
}

namespace {

size_t dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes{
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
      {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

}  // namespace

TensorFile TensorFile::read(const std::string& path) {
  TensorFile f;
  f.path_ = path;
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in, DataError, "cannot open weights file '{}'", path);
  f.bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const std::string& file = f.bytes_;
  const auto bad = [&](const std::string& why) {
    return DataError(fmt::format("weights file '{}' is not usable: {}", path, why));
  };
  if (file.size() < 8) throw bad(fmt::format("{} bytes is too short for a header", file.size()));
  const uint64_t header_len = little_endian_u64(file.data());
  if (header_len > kMaxHeader || header_len > file.size() - 8)
    throw bad(fmt::format("header length {} exceeds the file ({} bytes)", header_len, file.size()));
  nlohmann::json header;
  try {
    // Three levels, as the format (header, tensor entry, shape): deeper input would make
    // printing or comparing the JSON recurse until the stack overflows.
    header = parse_json_bounded(file.substr(8, header_len), 3);
  } catch (const nlohmann::json::exception& e) {
    throw bad(fmt::format("header is not valid JSON ({})", e.what()));
  } catch (const DataError& e) {
    throw bad("header " + e.message());
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  f.data_start_ = 8 + static_cast<size_t>(header_len);
  const uint64_t data_size = file.size() - f.data_start_;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      f.metadata_ = it.value();
      continue;
    }
    const nlohmann::json& t = it.value();
    Info info;
    try {
      info.dtype = t.at("dtype").get<std::string>();
      // Whole numbers only: the parser keeps 2.5, 1e20 and anything beyond 64 bits as
      // doubles, which get<> would convert unchecked (undefined when out of range).
      for (const char* key : {"shape", "data_offsets"})
        for (const nlohmann::json& v : t.at(key))
          if (v.is_number_float())
            throw bad(
                fmt::format("tensor '{}' has a malformed entry ({} holds {}, not a whole "
                            "number)",
                            name, key, v.dump()));
      const auto dims = t.at("shape").get<std::vector<int64_t>>();
      const auto offsets = t.at("data_offsets").get<std::vector<uint64_t>>();
      const size_t elem = dtype_size(info.dtype);
      if (elem == 0)
        throw bad(fmt::format("tensor '{}' has an unknown dtype {}", name, info.dtype));
      // The nonzero dimensions' product bounds every partial product of Shape::numel, so
      // a shape that passes here cannot overflow it (even with a zero at the end).
      double nonzero = 1.0;
      for (int64_t d : dims) {
        if (d < 0) throw bad(fmt::format("tensor '{}' has a negative dimension", name));
        if (d > 0) nonzero *= static_cast<double>(d);
      }
      if (nonzero > 1099511627776.0)  // 2^40
        throw bad(
            fmt::format("tensor '{}' has shape {}, too large to be real", name, Shape(dims).str()));
      uint64_t bytes = elem;
      for (int64_t d : dims) bytes *= static_cast<uint64_t>(d);
      if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != bytes ||
          offsets[1] > data_size)
        throw bad(fmt::format("tensor '{}' has data offsets {} outside the {} data bytes", name,
                              t.at("data_offsets").dump(), data_size));
      info.shape = Shape(dims);
      info.begin = offsets[0];
      info.end = offsets[1];
    } catch (const nlohmann::json::exception& ex) {
      throw bad(fmt::format("tensor '{}' has a malformed entry ({})", name, ex.what()));
    }
    f.tensors_.emplace(name, std::move(info));
  }
  return f;
}

void TensorFile::read_f32(const std::string& name, float* out) const {
  const auto it = tensors_.find(name);
  CNN_CHECK(it != tensors_.end(), DataError, "weights file '{}' has no tensor '{}'", path_, name);
  CNN_CHECK(it->second.dtype == "F32", DataError,
            "weights file '{}': tensor '{}' has dtype {}, expected F32", path_, name,
            it->second.dtype);
  std::memcpy(out, bytes_.data() + data_start_ + it->second.begin,
              static_cast<size_t>(it->second.end - it->second.begin));
}

void load_weights(const std::string& path, const Model& model, Parameters& params) {
  const TensorFile file = TensorFile::read(path);
  const auto bad = [&](const std::string& why) {
    return DataError(fmt::format("weights file '{}' is not usable: {}", path, why));
  };
  const nlohmann::json& meta = file.metadata();
  if (meta.is_object() && meta.contains("model")) {
    const auto& saved = meta["model"];
    if (!saved.is_string() || saved.get<std::string>() != model.name())
      throw bad(fmt::format("it holds weights of model {}, not '{}'", saved.dump(), model.name()));
  }
  if (file.tensors().size() != params.entries().size())
    throw bad(fmt::format("it holds {} tensors, model '{}' has {}", file.tensors().size(),
                          model.name(), params.entries().size()));
  // Check everything before writing anything, so a bad file leaves the model untouched.
  for (const auto& e : params.entries()) {
    const auto it = file.tensors().find(e.name);
    if (it == file.tensors().end()) throw bad(fmt::format("tensor '{}' is missing", e.name));
    if (it->second.dtype != "F32")
      throw bad(
          fmt::format("tensor '{}' has dtype \"{}\", expected F32", e.name, it->second.dtype));
    if (it->second.shape != e.value.shape())
      throw bad(fmt::format("tensor '{}' has shape {}, the model expects {}", e.name,
                            it->second.shape.str(), e.value.shape().str()));
  }
  std::vector<float> host;
  for (const auto& e : params.entries()) {
    host.resize(static_cast<size_t>(e.value.numel()));
    file.read_f32(e.name, host.data());
    params.write(e, host.data());
  }
}

LoadReport load_weights_by_name(const std::string& path, const Model& model, Parameters& params,
                                const LoadByNameOptions& options) {
  return load_weights_by_name(TensorFile::read(path), model, params, options);
}

LoadReport load_weights_by_name(const TensorFile& file, const Model& model, Parameters& params,
                                const LoadByNameOptions& options) {
  LoadReport report;
  std::vector<const Parameters::Entry*> plan;
  std::map<std::string, bool> taken;
  for (const Node& node : model.nodes()) {
    if (node.params.empty()) continue;
    std::vector<const Parameters::Entry*> entries;
    std::vector<std::string> problems;
    size_t present = 0;
    for (const ParamSpec& p : node.params) {
      const Parameters::Entry& e = params.find(node.name + "/" + p.name);
      entries.push_back(&e);
      const auto it = file.tensors().find(options.prefix + e.name);
      if (it == file.tensors().end()) {
        problems.push_back(fmt::format("'{}' is not in the file", p.name));
        continue;
      }
      ++present;
      taken[it->first] = true;
      if (it->second.dtype != "F32")
        problems.push_back(fmt::format("'{}' has dtype {} in the file", p.name, it->second.dtype));
      else if (it->second.shape != e.value.shape())
        problems.push_back(fmt::format("'{}' has shape {} in the file, {} in the model", p.name,
                                       it->second.shape.str(), e.value.shape().str()));
    }
    if (present == 0) {
      report.missing.push_back(node.name);
    } else if (problems.empty()) {
      report.loaded.push_back(node.name);
      plan.insert(plan.end(), entries.begin(), entries.end());
    } else {
      std::string why;
      for (const std::string& p : problems) why += (why.empty() ? "" : "; ") + p;
      report.mismatched.push_back(fmt::format("{} ({}): {}", node.name, node.layer->type(), why));
    }
  }
  for (const auto& [name, info] : file.tensors())
    if (!taken.count(name)) report.unused.push_back(name);

  if (!report.mismatched.empty() && !options.skip_mismatch) {
    std::string list;
    for (const std::string& m : report.mismatched) list += "\n  " + m;
    throw DataError(fmt::format(
        "cannot load '{}' into model '{}' by layer name: {} layer(s) differ (skip them with "
        "the skip-mismatch option):{}",
        file.path(), model.name(), report.mismatched.size(), list));
  }
  std::vector<float> host;
  for (const Parameters::Entry* e : plan) {
    host.resize(static_cast<size_t>(e->value.numel()));
    file.read_f32(options.prefix + e->name, host.data());
    params.write(*e, host.data());
  }
  return report;
}

std::string LoadReport::str() const {
  const auto list = [](const std::vector<std::string>& v, size_t most) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < most; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > most) s += fmt::format(", ... ({} more)", v.size() - most);
    return s;
  };
  std::string s = fmt::format("loaded {} layer(s) by name", loaded.size());
  s += loaded.empty() ? "\n" : ": " + list(loaded, 64) + "\n";
  if (!missing.empty())
    s += fmt::format("not in the file, left as initialised: {}\n", list(missing, 64));
  for (const std::string& m : mismatched) s += "skipped, does not match: " + m + "\n";
  if (!unused.empty())
    s += fmt::format("{} tensor(s) of the file unused: {}\n", unused.size(), list(unused, 8));
  return s;
}

}  // namespace cnn
