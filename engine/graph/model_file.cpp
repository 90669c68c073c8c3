#include "engine/graph/model_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "engine/core/error.h"
#include "engine/graph/layers.h"

namespace cnn {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// Bounds that keep every size computation of shape inference far from overflow, whatever
// a file holds.
constexpr int64_t kMaxCount = 1 << 20;   // filters, units, input dimensions
constexpr int64_t kMaxWindow = 1 << 12;  // kernel, strides, dilation, pooling, padding
constexpr int64_t kMaxInputElements = int64_t{1} << 31;
constexpr size_t kMaxLayers = 10000;  // ResNet-152 has about 500
constexpr size_t kMaxNameLength = 256;
constexpr int kMaxNesting = 64;
constexpr uintmax_t kMaxFileBytes = 16u << 20;

// ---------------------------------------------------------------------------------------
// "Did you mean": the closest candidate by edit distance, ignoring case.

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'filters'?)", or "" when nothing is close.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  if (word.size() > kMaxNameLength) return "";
  const std::string* best = nullptr;
  size_t best_d = 0;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (!best || d < best_d) {
      best = &c;
      best_d = d;
    }
  }
  if (!best || best_d > std::max<size_t>(2, best->size() / 3)) return "";
  return fmt::format(" (did you mean '{}'?)", *best);
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// A JSON value for an error message, shortened.
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Refuses nesting deeper than any description needs before parsing, so that no input can
// make parsing, printing or freeing a document recurse deeply.
void check_nesting(const std::string& text, const std::string& origin) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      CNN_CHECK(++depth <= kMaxNesting, ConfigError,
                "{}: arrays and objects nest deeper than {} levels", origin, kMaxNesting);
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The layer types: their keys with Keras's defaults, and how each is built.

class Fields;

struct KeySpec {
  std::string key;
  json fallback;  // the default; ignored when required
  bool required = false;
};

struct TypeSpec {
  std::string type;
  std::string default_name;  // the base of automatic names, as the layer's default_name()
  std::vector<KeySpec> keys;
  LayerPtr (*make)(const Fields&);
  int arity = 1;  // 0: two or more
};

const std::vector<std::string>& common_keys() {
  static const std::vector<std::string> keys{"type", "name", "inputs", "trainable"};
  return keys;
}

// A layer object's values, checked as they are read; errors carry the layer.
class Fields {
 public:
  Fields(const json& layer, const TypeSpec& spec, std::string where)
      : layer_(layer), spec_(spec), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    throw ConfigError(
        fmt::format("{}: '{}' must be {}, got {}", where_, key, expected, shown(get(key))));
  }
  [[noreturn]] void fail_with(const std::string& key, const std::string& message) const {
    throw ConfigError(fmt::format("{}: '{}': {}", where_, key, message));
  }

  // The value, or the default when the key is absent.
  json get(const std::string& key) const {
    if (const auto it = layer_.find(key); it != layer_.end()) return *it;
    for (const KeySpec& k : spec_.keys)
      if (k.key == key) return k.fallback;
    return json();
  }
  bool is_null(const std::string& key) const { return get(key).is_null(); }

  static bool integer_in(const json& v, int64_t lo, int64_t hi, int64_t* out) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) return false;
      *out = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      *out = v.get<int64_t>();
    } else {
      return false;
    }
    return *out >= lo && *out <= hi;
  }

  int count(const std::string& key) const {
    int64_t v = 0;
    if (!integer_in(get(key), 1, kMaxCount, &v))
      fail(key, fmt::format("an integer in [1, {}]", kMaxCount));
    return static_cast<int>(v);
  }

  // Keras's int-or-tuple: 3, or [3, 5] as (height, width).
  std::array<int, 2> window(const std::string& key) const {
    const json v = get(key);
    int64_t h = 0, w = 0;
    bool ok = false;
    if (integer_in(v, 1, kMaxWindow, &h)) {
      w = h;
      ok = true;
    } else if (v.is_array() && v.size() == 2) {
      ok = integer_in(v[0], 1, kMaxWindow, &h) && integer_in(v[1], 1, kMaxWindow, &w);
    }
    if (!ok)
      fail(key,
           fmt::format("an integer in [1, {0}] or a pair [height, width] of them", kMaxWindow));
    return {static_cast<int>(h), static_cast<int>(w)};
  }

  Padding padding(const std::string& key) const {
    const json v = get(key);
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "valid") return Padding::valid();
      if (s == "same") return Padding::same();
    }
    std::array<int64_t, 4> p{};
    const auto pair_at = [&](size_t i, int64_t* a, int64_t* b) {
      return v[i].is_array() && v[i].size() == 2 && integer_in(v[i][0], 0, kMaxWindow, a) &&
             integer_in(v[i][1], 0, kMaxWindow, b);
    };
    if (v.is_array() && v.size() == 2 && pair_at(0, &p[0], &p[1]) && pair_at(1, &p[2], &p[3]))
      return Padding::explicit_(static_cast<int>(p[0]), static_cast<int>(p[1]),
                                static_cast<int>(p[2]), static_cast<int>(p[3]));
    fail(key, "\"valid\", \"same\" or [[top, bottom], [left, right]]");
  }

  Activation activation(const std::string& key) const {
    const json v = get(key);
    if (v.is_null()) return Activation::Linear;  // Keras's activation=None
    if (!v.is_string()) fail(key, "a string such as \"relu\"");
    try {
      return parse_activation(v.get<std::string>());
    } catch (const ConfigError& e) {
      fail_with(key, e.message());
    }
  }

  bool boolean(const std::string& key) const {
    const json v = get(key);
    if (!v.is_boolean()) fail(key, "true or false");
    return v.get<bool>();
  }

  float number(const std::string& key) const {
    const json v = get(key);
    if (!v.is_number()) fail(key, "a number");
    const double d = v.get<double>();
    if (!(std::abs(d) <= 1e30)) fail(key, "a finite number");
    return static_cast<float>(d);
  }

 private:
  const json& layer_;
  const TypeSpec& spec_;
  std::string where_;
};

LayerPtr make_conv2d(const Fields& f) {
  Conv2dParams p;
  p.filters = f.count("filters");
  const auto k = f.window("kernel_size"), s = f.window("strides"), d = f.window("dilation_rate");
  p.kernel_h = k[0];
  p.kernel_w = k[1];
  p.stride_h = s[0];
  p.stride_w = s[1];
  p.dilation_h = d[0];
  p.dilation_w = d[1];
  p.padding = f.padding("padding");
  p.use_bias = f.boolean("use_bias");
  return layers::conv2d(p, f.activation("activation"));
}

LayerPtr make_pool(const Fields& f, cnnk::PoolMode mode) {
  Pool2dParams p;
  p.mode = mode;
  const auto size = f.window("pool_size");
  p.pool_h = size[0];
  p.pool_w = size[1];
  if (!f.is_null("strides")) {
    const auto s = f.window("strides");
    p.stride_h = s[0];
    p.stride_w = s[1];
  }
  p.padding = f.padding("padding");
  return layers::pool2d(p);
}

LayerPtr make_max_pool(const Fields& f) { return make_pool(f, cnnk::PoolMode::Max); }
LayerPtr make_avg_pool(const Fields& f) { return make_pool(f, cnnk::PoolMode::Average); }

LayerPtr make_dense(const Fields& f) {
  return layers::dense(f.count("units"), f.activation("activation"), f.boolean("use_bias"));
}

LayerPtr make_flatten(const Fields&) { return layers::flatten(); }
LayerPtr make_dropout(const Fields& f) { return layers::dropout(f.number("rate")); }
LayerPtr make_spatial_dropout(const Fields& f) {
  return layers::spatial_dropout2d(f.number("rate"));
}
LayerPtr make_batch_norm(const Fields& f) {
  return layers::batch_norm(f.number("momentum"), f.number("epsilon"));
}
LayerPtr make_activation(const Fields& f) { return layers::activation(f.activation("activation")); }
LayerPtr make_add(const Fields&) { return layers::add(); }
LayerPtr make_concatenate(const Fields& f) {
  int64_t axis = 0;
  if (!Fields::integer_in(f.get("axis"), -1, -1, &axis))
    f.fail("axis", "-1 (the channel axis, the only one Concatenate supports)");
  return layers::concatenate();
}

const std::vector<TypeSpec>& type_specs() {
  const json null;
  static const std::vector<TypeSpec> specs{
      {"Conv2D",
       "conv2d",
       {{"filters", null, true},
        {"kernel_size", null, true},
        {"strides", 1},
        {"padding", "valid"},
        {"dilation_rate", 1},
        {"activation", "linear"},
        {"use_bias", true}},
       make_conv2d},
      {"MaxPooling2D",
       "max_pooling2d",
       {{"pool_size", 2}, {"strides", null}, {"padding", "valid"}},
       make_max_pool},
      {"AveragePooling2D",
       "average_pooling2d",
       {{"pool_size", 2}, {"strides", null}, {"padding", "valid"}},
       make_avg_pool},
      {"Dense",
       "dense",
       {{"units", null, true}, {"activation", "linear"}, {"use_bias", true}},
       make_dense},
      {"Flatten", "flatten", {}, make_flatten},
      {"Dropout", "dropout", {{"rate", null, true}}, make_dropout},
      {"SpatialDropout2D", "spatial_dropout2d", {{"rate", null, true}}, make_spatial_dropout},
      {"BatchNormalization",
       "batch_normalization",
       {{"momentum", 0.99}, {"epsilon", 0.001}},
       make_batch_norm},
      {"Activation", "activation", {{"activation", null, true}}, make_activation},
      {"Add", "add", {}, make_add, 0},
      {"Concatenate", "concatenate", {{"axis", -1}}, make_concatenate, 0},
  };
  return specs;
}

const TypeSpec* find_type(const std::string& type) {
  for (const TypeSpec& s : type_specs())
    if (s.type == type) return &s;
  return nullptr;
}

std::vector<std::string> type_names() {
  std::vector<std::string> names;
  for (const TypeSpec& s : type_specs()) names.push_back(s.type);
  return names;
}

// ---------------------------------------------------------------------------------------
// Reading.

std::string json_kind(const json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  return "null";
}

std::string default_model_name(const std::string& origin) {
  namespace fs = std::filesystem;
  const fs::path p(origin);
  if (p.extension() == ".json" && !p.stem().empty()) return p.stem().string();
  return "model";
}

void check_keys(const json& obj, const std::vector<std::string>& allowed,
                const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
      throw ConfigError(
          fmt::format("{}: unknown key '{}'{}", where, it.key(), did_you_mean(it.key(), allowed)));
}

std::string checked_name(const json& v, const std::string& what, const std::string& where) {
  CNN_CHECK(v.is_string(), ConfigError, "{}: {} must be a string, got {}", where, what, shown(v));
  const std::string s = v.get<std::string>();
  CNN_CHECK(!s.empty() && s.size() <= kMaxNameLength, ConfigError,
            "{}: {} must have 1 to {} characters", where, what, kMaxNameLength);
  return s;
}

// The message of an error the graph raised, without the "layer 'x' (Type): " that the
// caller's own context already says.
std::string graph_message(const Error& e, const std::string& graph_where) {
  std::string msg = e.message();
  const std::string prefix = graph_where + ": ";
  if (msg.compare(0, prefix.size(), prefix) == 0) msg = msg.substr(prefix.size());
  return msg;
}

struct InputSpec {
  Shape shape;
  std::string name = "input_layer";
};

InputSpec read_input(const json& doc, const std::string& file) {
  CNN_CHECK(doc.contains("input"), ConfigError,
            "{}: missing required key 'input' (the item shape, e.g. [1, 28, 28])", file);
  const std::string where = file + ": 'input'";
  InputSpec in;
  json shape = doc["input"];
  if (shape.is_object()) {
    check_keys(shape, {"shape", "name"}, where);
    if (shape.contains("name")) in.name = checked_name(shape["name"], "its name", where);
    CNN_CHECK(shape.contains("shape"), ConfigError, "{}: missing required key 'shape'", where);
    shape = json(shape["shape"]);
  }
  std::vector<int64_t> dims;
  if (shape.is_array() && shape.size() >= 1 && shape.size() <= 3) {
    for (const json& d : shape) {
      int64_t v = 0;
      if (!Fields::integer_in(d, 1, kMaxCount, &v)) break;
      dims.push_back(v);
    }
  }
  int64_t elements = 1;
  for (int64_t d : dims) elements *= d;
  CNN_CHECK(dims.size() == shape.size() && !dims.empty() && elements <= kMaxInputElements,
            ConfigError,
            "{}: the shape must be [channels, height, width] or [features], each an integer in "
            "[1, {}] (at most {} elements), got {}",
            where, kMaxCount, kMaxInputElements, shown(shape));
  in.shape = Shape(dims);
  return in;
}

}  // namespace

Model model_from_json(const json& doc, const std::string& origin) {
  const std::string file = origin.empty() ? "model description" : origin;
  CNN_CHECK(doc.is_object(), ConfigError,
            "{}: a model description is a JSON object with \"input\" and \"layers\", not {}", file,
            json_kind(doc));
  check_keys(doc, {"name", "input", "layers", "output"}, file);
  const std::string name =
      doc.contains("name") ? checked_name(doc["name"], "'name'", file) : default_model_name(origin);
  const InputSpec input = read_input(doc, file);
  CNN_CHECK(doc.contains("layers"), ConfigError, "{}: missing required key 'layers'", file);
  const json& list = doc["layers"];
  CNN_CHECK(list.is_array() && !list.empty() && list.size() <= kMaxLayers, ConfigError,
            "{}: 'layers' must be a non-empty array of layer objects, got {}", file, shown(list));

  Model m(name);
  m.input(input.shape, input.name);
  // Where each explicit name is defined (1-based), to tell a reference to a later layer
  // (a forward reference, or a cycle) from a name that is nowhere.
  std::vector<std::pair<std::string, size_t>> declared;
  for (size_t i = 0; i < list.size(); ++i)
    if (list[i].is_object() && list[i].contains("name") && list[i]["name"].is_string())
      declared.emplace_back(list[i]["name"].get<std::string>(), i + 1);

  for (size_t i = 0; i < list.size(); ++i) {
    const size_t index = i + 1;
    const json& layer = list[i];
    std::string where = fmt::format("{}: layer {}", file, index);
    CNN_CHECK(layer.is_object(), ConfigError, "{}: a layer is a JSON object, not {}", where,
              json_kind(layer));
    CNN_CHECK(layer.contains("type"), ConfigError, "{}: missing required key 'type' (one of {})",
              where, join(type_names()));
    CNN_CHECK(layer["type"].is_string(), ConfigError, "{}: 'type' must be a string, got {}", where,
              shown(layer["type"]));
    const std::string type = layer["type"].get<std::string>();
    const TypeSpec* spec = find_type(type);
    CNN_CHECK(spec, ConfigError, "{}: unknown layer type '{}'{}; the types are {}", where,
              type.size() > kMaxNameLength ? type.substr(0, kMaxNameLength) + "..." : type,
              did_you_mean(type, type_names()), join(type_names()));
    std::string layer_name;
    if (layer.contains("name")) {
      layer_name = checked_name(layer["name"], "'name'", where);
      CNN_CHECK(layer_name.find('/') == std::string::npos, ConfigError,
                "{}: the name '{}' must not contain '/' (it separates layer and parameter "
                "names in weight files)",
                where, layer_name);
    }
    const std::string shown_name =
        layer_name.empty() ? m.next_auto_name(spec->default_name) : layer_name;
    where = fmt::format("{}: layer {} ('{}', {})", file, index, shown_name, type);

    std::vector<std::string> allowed = common_keys();
    for (const KeySpec& k : spec->keys) allowed.push_back(k.key);
    check_keys(layer, allowed, where);
    for (const KeySpec& k : spec->keys)
      CNN_CHECK(!k.required || layer.contains(k.key), ConfigError, "{}: missing required key '{}'",
                where, k.key);
    if (!layer_name.empty()) {
      const int clash = m.find(layer_name);
      CNN_CHECK(clash < 0, ConfigError, "{}: the name '{}' is already taken by {}", where,
                layer_name, clash == 0 ? "the input" : fmt::format("layer {}", clash));
    }

    // Inputs: names of nodes defined above; default: the node listed before.
    std::vector<NodeRef> inputs;
    if (layer.contains("inputs")) {
      json names = layer["inputs"];
      if (names.is_string()) names = json::array({names});
      CNN_CHECK(names.is_array() && !names.empty(), ConfigError,
                "{}: 'inputs' must be a layer name or a non-empty list of them, got {}", where,
                shown(layer["inputs"]));
      for (const json& v : names) {
        const std::string ref = checked_name(v, "each of 'inputs'", where);
        int id = m.find(ref);
        if (id < 0 && ref == "input") id = 0;  // the model input, whatever its name
        if (id < 0) {
          for (const auto& [later, at] : declared) {
            CNN_CHECK(later != ref || at != index, ConfigError,
                      "{}: the layer takes its own output as input (a cycle)", where);
            CNN_CHECK(later != ref || at < index, ConfigError,
                      "{}: input '{}' is layer {}, listed later: list every layer after its "
                      "inputs (a graph with a cycle cannot be listed so)",
                      where, ref, at);
          }
          std::vector<std::string> known{"input"};
          for (const Node& n : m.nodes()) known.push_back(n.name);
          throw ConfigError(
              fmt::format("{}: unknown input '{}'{}", where, ref, did_you_mean(ref, known)));
        }
        for (const NodeRef& r : inputs)
          CNN_CHECK(r.id != id, ConfigError, "{}: input '{}' is listed twice", where, ref);
        inputs.push_back({id});
      }
    } else {
      inputs.push_back({static_cast<int>(m.nodes().size()) - 1});
    }
    if (spec->arity == 0)
      CNN_CHECK(inputs.size() >= 2, ConfigError,
                "{}: takes two or more inputs; name them in \"inputs\"", where);
    else
      CNN_CHECK(inputs.size() == static_cast<size_t>(spec->arity), ConfigError,
                "{}: takes {} input, got {}", where, spec->arity, inputs.size());

    const Fields fields(layer, *spec, where);
    LayerPtr built = spec->make(fields);
    if (layer.contains("trainable")) built->set_trainable(fields.boolean("trainable"));
    const std::string graph_where = fmt::format("layer '{}' ({})", shown_name, type);
    try {
      m.add(std::move(built), inputs, layer_name);
    } catch (const Error& e) {
      throw ConfigError(fmt::format("{}: {}", where, graph_message(e, graph_where)));
    }
  }

  NodeRef output;
  if (doc.contains("output")) {
    const std::string out = checked_name(doc["output"], "'output'", file);
    output.id = m.find(out);
    if (output.id < 0) {
      std::vector<std::string> known;
      for (const Node& n : m.nodes()) known.push_back(n.name);
      throw ConfigError(
          fmt::format("{}: 'output' names no layer: '{}'{}", file, out, did_you_mean(out, known)));
    }
    CNN_CHECK(output.id > 0, ConfigError, "{}: 'output' must be a layer, not the input", file);
  }
  m.finish(output);
  return m;
}

Model model_from_json_text(const std::string& text, const std::string& origin) {
  const std::string file = origin.empty() ? "model description" : origin;
  check_nesting(text, file);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 3, ..." without the tag.
    if (const size_t close = what.find("] "); what.rfind("[json.", 0) == 0 && close != what.npos)
      what = what.substr(close + 2);
    throw ConfigError(fmt::format("{}: not valid JSON: {}", file, what));
  }
  return model_from_json(doc, origin);
}

Model load_model_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  CNN_CHECK(!ec && fs::is_regular_file(path, ec), DataError, "cannot open model file '{}'{}", path,
            ec ? fmt::format(" ({})", ec.message()) : "");
  CNN_CHECK(size <= kMaxFileBytes, DataError,
            "model file '{}' has {} bytes; a model description has at most {}", path, size,
            kMaxFileBytes);
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in, DataError, "cannot open model file '{}'", path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return model_from_json_text(text, path);
}

// ---------------------------------------------------------------------------------------
// Writing.

ojson model_to_json_value(const Model& model) {
  CNN_CHECK(model.finished(), Error, "model '{}' is not finished", model.name());
  const auto& nodes = model.nodes();
  ojson doc;
  doc["name"] = model.name();
  const ojson shape = model.input_shape().dims();
  if (nodes.front().name == "input_layer")
    doc["input"] = shape;
  else
    doc["input"] = {{"shape", shape}, {"name", nodes.front().name}};
  ojson list = ojson::array();
  for (size_t i = 1; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    const TypeSpec* spec = find_type(n.layer->type());
    CNN_CHECK(spec, Error, "layer '{}' has type {}, which model files do not know", n.name,
              n.layer->type());
    ojson l;
    l["type"] = n.layer->type();
    l["name"] = n.name;
    const ojson config = n.layer->config();
    for (auto it = config.begin(); it != config.end(); ++it) {
      bool at_default = false;
      for (const KeySpec& k : spec->keys)
        if (k.key == it.key()) at_default = !k.required && k.fallback == json(it.value());
      if (!at_default) l[it.key()] = it.value();
    }
    if (n.inputs.size() != 1 || n.inputs[0] != static_cast<int>(i) - 1) {
      ojson names = ojson::array();
      for (int id : n.inputs) names.push_back(nodes[static_cast<size_t>(id)].name);
      l["inputs"] = names;
    }
    if (!n.layer->trainable()) l["trainable"] = false;
    list.push_back(std::move(l));
  }
  doc["layers"] = std::move(list);
  if (model.output_id() != static_cast<int>(nodes.size()) - 1)
    doc["output"] = model.output_node().name;
  return doc;
}

namespace {

// One line per value: {"a": 1, "b": [2, 3]}.
std::string inline_dump(const ojson& v) {
  std::string s;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      s += (s.empty() ? "" : ", ") + ojson(it.key()).dump() + ": " + inline_dump(it.value());
    return "{" + s + "}";
  }
  if (v.is_array()) {
    for (const ojson& e : v) s += (s.empty() ? "" : ", ") + inline_dump(e);
    return "[" + s + "]";
  }
  return v.dump();
}

}  // namespace

std::string model_to_json(const Model& model) {
  const ojson doc = model_to_json_value(model);
  std::string s = "{\n";
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    s += "  " + ojson(it.key()).dump() + ": ";
    if (it.key() == "layers") {
      s += "[\n";
      for (size_t i = 0; i < it.value().size(); ++i)
        s += "    " + inline_dump(it.value()[i]) + (i + 1 < it.value().size() ? ",\n" : "\n");
      s += "  ]";
    } else {
      s += inline_dump(it.value());
    }
    s += std::next(it) == doc.end() ? "\n" : ",\n";
  }
  return s + "}\n";
}

bool is_model_file(const std::string& name, bool zoo_has_name) {
  namespace fs = std::filesystem;
  const auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".json") || name.find('/') != std::string::npos) return true;
  std::error_code ec;
  return !zoo_has_name && fs::is_regular_file(name, ec);
}

}  // namespace cnn
