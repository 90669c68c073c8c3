#include "engine/train/checkpointing.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "engine/core/error.h"
#include "engine/graph/model_file.h"
#include "engine/graph/zoo.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json_whole.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/trainer.h"

namespace cnn {
namespace {

constexpr const char* kFormatVersion = "1";
constexpr const char* kWeightsFormat = "cnn-engine";  // save_weights' files
constexpr const char* kBestPrefix = "early_stopping/best/";

std::string slot_tensor(const std::string& slot, const std::string& param) {
  return "optimizer/" + slot + "/" + param;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    const size_t comma = s.find(',', start);
    const size_t end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Where an entry's values start in its flat buffer (values for trainable ones, else state).
size_t entry_offset(const Parameters& params, const Parameters::Entry& e) {
  const Tensor& flat = e.trainable ? params.values() : params.state();
  return static_cast<size_t>(e.value.data() - flat.data());
}

nlohmann::json history_to_json(const History& h) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochLog& e : h.epochs) {
    nlohmann::json j{{"epoch", e.epoch},    {"loss", e.loss},          {"accuracy", e.accuracy},
                     {"val_loss", nullptr}, {"val_accuracy", nullptr}, {"lr", e.lr},
                     {"seconds", e.seconds}};
    if (e.val_loss) j["val_loss"] = *e.val_loss;
    if (e.val_accuracy) j["val_accuracy"] = *e.val_accuracy;
    epochs.push_back(j);
  }
  return {{"epochs", epochs},
          {"stopped_early", h.stopped_early},
          {"best_epoch", h.best_epoch},
          {"restored_best", h.restored_best}};
}

History history_from_json(const nlohmann::json& j) {
  History h;
  for (const nlohmann::json& e : j.at("epochs")) {
    EpochLog log;
    log.epoch = json_whole<int>(e.at("epoch"));
    log.loss = e.at("loss").get<double>();
    log.accuracy = e.at("accuracy").get<double>();
    if (!e.at("val_loss").is_null()) log.val_loss = e.at("val_loss").get<double>();
    if (!e.at("val_accuracy").is_null()) log.val_accuracy = e.at("val_accuracy").get<double>();
    log.lr = e.at("lr").get<double>();
    log.seconds = e.at("seconds").get<double>();
    h.epochs.push_back(log);
  }
  h.stopped_early = j.at("stopped_early").get<bool>();
  h.best_epoch = json_whole<int>(j.at("best_epoch"));
  h.restored_best = j.at("restored_best").get<bool>();
  return h;
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw DataError(fmt::format("checkpoint '{}' is not usable: {}", path, why));
}

int64_t parse_int(const std::string& path, const std::string& key, const std::string& text,
                  int64_t min) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < min)
    refuse(path,
           fmt::format("its metadata '{}' is '{}', not a whole number >= {}", key, text, min));
  return v;
}

uint64_t parse_u64(const std::string& path, const std::string& key, const std::string& text) {
  size_t used = 0;
  uint64_t v = 0;
  try {
    if (!text.empty() && text[0] != '-') v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    refuse(path, fmt::format("its metadata '{}' is '{}', not a seed", key, text));
  return v;
}

nlohmann::json parse_json(const std::string& path, const std::string& key,
                          const std::string& text) {
  try {
    return parse_json_bounded(text, 8);  // what this engine writes nests 4 levels at most
  } catch (const nlohmann::json::exception& e) {
    refuse(path, fmt::format("its metadata '{}' is not valid JSON ({})", key, e.what()));
  } catch (const DataError& e) {
    refuse(path, fmt::format("its metadata '{}' {}", key, e.message()));
  }
}

// Copies the named tensor of `file` into dst (count values), checking its shape.
void copy_tensor(const CheckpointFile& file, const std::string& path, const std::string& name,
                 const Shape& shape, float* dst) {
  const CheckpointFile::Tensor* t = file.find(name);
  if (!t) refuse(path, fmt::format("tensor '{}' is missing", name));
  if (Shape(t->shape) != shape)
    refuse(path, fmt::format("tensor '{}' has shape {}, the model expects {}", name,
                             Shape(t->shape).str(), shape.str()));
  std::copy(t->values.begin(), t->values.end(), dst);
}

}  // namespace

ModelDescription ModelDescription::of(const Model& model, bool from_file) {
  ModelDescription d;
  d.name = model.name();
  d.from_file = from_file;
  d.json = model_to_json(model);
  for (const Node& n : model.nodes())
    if (n.layer && !n.layer->trainable()) d.frozen_layers.push_back(n.name);
  return d;
}

Model ModelDescription::build(const std::string& origin) const {
  if (from_file) {
    CNN_CHECK(!json.empty(), DataError, "{} holds no model description", origin);
    return model_from_json_text(json, origin + " (its model description)");
  }
  bool known = false;
  for (const ZooEntry& e : model_zoo()) known = known || e.name == name;
  CNN_CHECK(known, DataError, "{} holds model '{}', which is not a model of the zoo", origin, name);
  Model m = build_model(name);
  for (const std::string& layer : frozen_layers) m.set_trainable(layer, false);
  return m;
}

CheckpointFile make_checkpoint(const Model& model, const Parameters& params, const RunInfo& run,
                               const TrainState& state) {
  const size_t n_values = static_cast<size_t>(params.values().numel());
  const size_t n_state = static_cast<size_t>(params.state().numel());
  CNN_CHECK(state.weights.values.size() == n_values && state.weights.state.size() == n_state, Error,
            "the state to checkpoint does not match model '{}'", model.name());
  CheckpointFile f;
  auto& md = f.metadata;
  md["format"] = kCheckpointFormat;
  md["format_version"] = kFormatVersion;
  md["model"] = model.name();
  md["model_source"] = run.model.from_file ? "file" : "zoo";
  md["model_json"] = run.model.json;
  md["frozen_layers"] = join(run.model.frozen_layers);
  md["epoch"] = std::to_string(state.epoch);
  md["iterations"] = std::to_string(state.iterations);
  md["train_samples"] = std::to_string(state.train_samples);
  md["seed"] = std::to_string(run.seed);
  md["options"] = run.options.dump();
  md["data"] = run.data.dump();
  md["lr_schedule_state"] = state.schedule.dump();
  md["early_stopping_state"] = nlohmann::json{
      {"best", state.stopping.best},
      {"best_epoch", state.stopping.best_epoch},
      {"wait",
       state.stopping.wait}}.dump();
  md["history"] = history_to_json(state.history).dump();
  std::vector<std::string> slot_names;
  for (const TrainState::Slot& s : state.optimizer_slots) slot_names.push_back(s.name);
  md["optimizer_slots"] = join(slot_names);
  md["rng"] = fmt::format(
      "counter-based (cnnk/random.h) from seed {}: the shuffle of epoch e is "
      "Rng::stream(seed, 0x5AFF1E, e); dropout masks and augmentation draw from (seed, step)",
      run.seed);
  const bool has_best = !state.best_weights.values.empty() || !state.best_weights.state.empty();
  md["has_best_weights"] = has_best ? "1" : "0";

  const auto add = [&](const std::string& name, const Shape& shape, const float* src) {
    f.tensors.push_back({name, shape.dims(), std::vector<float>(src, src + shape.numel())});
  };
  const auto weights_of = [&](const Parameters::Snapshot& s, const Parameters::Entry& e) {
    return (e.trainable ? s.values.data() : s.state.data()) + entry_offset(params, e);
  };
  for (const Parameters::Entry& e : params.entries())
    add(e.name, e.value.shape(), weights_of(state.weights, e));
  for (const TrainState::Slot& s : state.optimizer_slots) {
    CNN_CHECK(s.values.size() == n_values, Error, "optimizer state '{}' does not match the model",
              s.name);
    for (const Parameters::Entry& e : params.entries())
      if (e.trainable)
        add(slot_tensor(s.name, e.name), e.value.shape(),
            s.values.data() + entry_offset(params, e));
  }
  if (has_best) {
    CNN_CHECK(
        state.best_weights.values.size() == n_values && state.best_weights.state.size() == n_state,
        Error, "the best weights do not match model '{}'", model.name());
    for (const Parameters::Entry& e : params.entries())
      add(kBestPrefix + e.name, e.value.shape(), weights_of(state.best_weights, e));
  }
  return f;
}

std::string Checkpoint::meta(const std::string& key) const {
  const auto it = file_.metadata.find(key);
  return it == file_.metadata.end() ? "" : it->second;
}

Checkpoint Checkpoint::read(const std::string& path, bool allow_weights_file) {
  Checkpoint c;
  c.path_ = path;
  c.file_ = read_checkpoint_file(path);
  const std::string format = c.meta("format");
  if (format == kWeightsFormat) {
    if (!allow_weights_file)
      refuse(path,
             "it is a weights file (from --save), not a checkpoint: it holds no training "
             "state to resume");
    c.weights_only_ = true;
    c.run_.model.name = c.meta("model");
    if (c.run_.model.name.empty()) refuse(path, "its metadata does not name the model");
    return c;
  }
  if (format != kCheckpointFormat)
    refuse(path, format.empty()
                     ? "it is a safetensors file of another program (no 'format' in "
                       "its metadata)"
                     : fmt::format("its format is '{}', not '{}'", format, kCheckpointFormat));
  if (!c.file_.checksummed) refuse(path, "it has no checksum");
  if (c.meta("format_version") != kFormatVersion)
    refuse(path, fmt::format("it is format version '{}'; this engine reads version {}",
                             c.meta("format_version"), kFormatVersion));
  const CheckpointFile& f = c.file_;
  RunInfo& run = c.run_;
  run.model.name = f.meta("model", path);
  const std::string& source = f.meta("model_source", path);
  if (source != "zoo" && source != "file")
    refuse(path, fmt::format("its model_source is '{}', not 'zoo' or 'file'", source));
  run.model.from_file = source == "file";
  run.model.json = f.meta("model_json", path);
  run.model.frozen_layers = split(f.meta("frozen_layers", path));
  run.seed = parse_u64(path, "seed", f.meta("seed", path));
  run.options = parse_json(path, "options", f.meta("options", path));
  run.data = parse_json(path, "data", f.meta("data", path));
  c.epoch_ = static_cast<int>(parse_int(path, "epoch", f.meta("epoch", path), 1));
  // The options must be ones fit can run with.
  try {
    FitOptions probe;
    fit_options_from_json(run.options, probe);
  } catch (const nlohmann::json::exception& e) {
    refuse(path, fmt::format("its options are malformed ({})", e.what()));
  } catch (const ConfigError& e) {
    refuse(path, fmt::format("its options are not valid ({})", e.what()));
  }
  return c;
}

const CheckpointFile::Tensor& Checkpoint::tensor_of(const Model& model,
                                                    const Parameters::Entry& e) const {
  const CheckpointFile::Tensor* t = file_.find(e.name);
  if (!t) refuse(path_, fmt::format("tensor '{}' of model '{}' is missing", e.name, model.name()));
  if (Shape(t->shape) != e.value.shape())
    refuse(path_, fmt::format("tensor '{}' has shape {}, model '{}' expects {}", e.name,
                              Shape(t->shape).str(), model.name(), e.value.shape().str()));
  return *t;
}

void Checkpoint::check_model(const Model& model, const Parameters& params) const {
  if (run_.model.name != model.name())
    refuse(path_, fmt::format("it holds model '{}', not '{}'", run_.model.name, model.name()));
  std::set<std::string> expected;
  for (const Parameters::Entry& e : params.entries()) {
    tensor_of(model, e);
    expected.insert(e.name);
  }
  if (weights_only_) {
    for (const CheckpointFile::Tensor& t : file_.tensors)
      if (!expected.count(t.name))
        refuse(path_, fmt::format("it holds tensor '{}', which model '{}' does not have", t.name,
                                  model.name()));
    return;
  }
  for (const std::string& slot : split(meta("optimizer_slots")))
    for (const Parameters::Entry& e : params.entries())
      if (e.trainable) expected.insert(slot_tensor(slot, e.name));
  if (meta("has_best_weights") == "1")
    for (const Parameters::Entry& e : params.entries()) expected.insert(kBestPrefix + e.name);
  for (const CheckpointFile::Tensor& t : file_.tensors)
    if (!expected.count(t.name))
      refuse(path_, fmt::format("it holds tensor '{}', which model '{}' as configured has no "
                                "place for (another model, or other frozen layers?)",
                                t.name, model.name()));
  for (const std::string& name : expected)
    if (!file_.find(name)) refuse(path_, fmt::format("tensor '{}' is missing", name));
}

TrainState Checkpoint::state(const Model& model, const Parameters& params) const {
  if (weights_only_)
    refuse(path_,
           "it is a weights file (from --save), not a checkpoint: it holds no training "
           "state to resume");
  check_model(model, params);
  const CheckpointFile& f = file_;
  TrainState s;
  s.epoch = epoch_;
  s.iterations = parse_int(path_, "iterations", f.meta("iterations", path_), 0);
  s.train_samples = parse_int(path_, "train_samples", f.meta("train_samples", path_), 1);
  const size_t n_values = static_cast<size_t>(params.values().numel());
  const size_t n_state = static_cast<size_t>(params.state().numel());
  const auto read_weights = [&](const std::string& prefix, Parameters::Snapshot& out) {
    out.values.assign(n_values, 0.0f);
    out.state.assign(n_state, 0.0f);
    for (const Parameters::Entry& e : params.entries())
      copy_tensor(f, path_, prefix + e.name, e.value.shape(),
                  (e.trainable ? out.values.data() : out.state.data()) + entry_offset(params, e));
  };
  read_weights("", s.weights);
  for (const std::string& slot : split(meta("optimizer_slots"))) {
    TrainState::Slot out{slot, std::vector<float>(n_values, 0.0f)};
    for (const Parameters::Entry& e : params.entries())
      if (e.trainable)
        copy_tensor(f, path_, slot_tensor(slot, e.name), e.value.shape(),
                    out.values.data() + entry_offset(params, e));
    s.optimizer_slots.push_back(std::move(out));
  }
  if (meta("has_best_weights") == "1") read_weights(kBestPrefix, s.best_weights);
  s.schedule = parse_json(path_, "lr_schedule_state", f.meta("lr_schedule_state", path_));
  try {
    const nlohmann::json es =
        parse_json(path_, "early_stopping_state", f.meta("early_stopping_state", path_));
    s.stopping.best = es.at("best").get<double>();
    s.stopping.best_epoch = json_whole<int>(es.at("best_epoch"));
    s.stopping.wait = json_whole<int>(es.at("wait"));
    s.history = history_from_json(parse_json(path_, "history", f.meta("history", path_)));
  } catch (const nlohmann::json::exception& e) {
    refuse(path_, fmt::format("its training state is malformed ({})", e.what()));
  }
  try {
    LrSchedule probe(LrScheduleConfig{}, 1.0, 1, 1);
    probe.restore_state(s.schedule);
  } catch (const DataError& e) {
    refuse(path_, e.message());
  }
  if (static_cast<int>(s.history.epochs.size()) != s.epoch)
    refuse(path_, fmt::format("its history has {} epochs, its metadata says {}",
                              s.history.epochs.size(), s.epoch));
  return s;
}

void Checkpoint::load_weights(const Model& model, Parameters& params) const {
  if (weights_only_) {
    check_model(model, params);
  } else if (run_.model.name != model.name()) {
    refuse(path_, fmt::format("it holds model '{}', not '{}'", run_.model.name, model.name()));
  }
  // Check every tensor before writing any, so a bad file leaves the model untouched.
  std::vector<std::pair<const Parameters::Entry*, const CheckpointFile::Tensor*>> plan;
  for (const Parameters::Entry& e : params.entries()) {
    plan.emplace_back(&e, &tensor_of(model, e));
  }
  for (const auto& [entry, tensor] : plan) params.write(*entry, tensor->values.data());
}

std::unique_ptr<InferenceModel> load_checkpoint_for_inference(const std::string& path,
                                                              Backend& backend,
                                                              const std::string& expected_model) {
  const Checkpoint c = Checkpoint::read(path, /*allow_weights_file=*/true);
  const ModelDescription& desc = c.run().model;
  if (!expected_model.empty() && expected_model != desc.name)
    refuse(path, fmt::format("it holds model '{}', not '{}'", desc.name, expected_model));
  auto m = std::make_unique<InferenceModel>(
      InferenceModel{desc.build(fmt::format("checkpoint '{}'", path)), nullptr, ""});
  m->params = std::make_unique<Parameters>(m->model, backend);
  c.load_weights(m->model, *m->params);
  m->source = c.is_weights_file()
                  ? fmt::format("{} ({} parameters) with weights {}", m->model.name(),
                                m->model.count_params(), path)
                  : fmt::format("{} ({} parameters) from checkpoint {} (epoch {})", m->model.name(),
                                m->model.count_params(), path, c.epoch());
  return m;
}

int remove_stale_temporaries(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  const std::string prefix = name + ".tmp.";
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = file.substr(prefix.size());
    if (pid_text.empty() || pid_text.size() > 10 ||
        pid_text.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const long pid = std::stol(pid_text);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or unsure
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

Checkpointer::Checkpointer(std::string dir, const Model& model, const Parameters& params,
                           RunInfo run, std::string monitor, const Checkpoint* resumed)
    : dir_(std::move(dir)),
      model_(model),
      params_(params),
      run_(std::move(run)),
      monitor_(std::move(monitor)) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  CNN_CHECK(fs::is_directory(dir_, ec), Error, "cannot create the checkpoint directory '{}'{}",
            dir_, ec ? ": " + ec.message() : "");
  remove_stale_temporaries(dir_, "last.safetensors");
  remove_stale_temporaries(dir_, "best.safetensors");
  if (resumed && !resumed->is_weights_file()) {
    // The best so far follows from the resumed run's history, by the same rule.
    const nlohmann::json h = parse_json(resumed->path(), "history", resumed->meta("history"));
    try {
      const History history = history_from_json(h);
      const bool maximize = monitor_.find("acc") != std::string::npos;
      for (const EpochLog& e : history.epochs) {
        const std::optional<double> v = epoch_metric(e, monitor_);
        if (v && (!best_ || (maximize ? *v > *best_ : *v < *best_))) {
          best_ = v;
          best_epoch_ = e.epoch;
        }
      }
    } catch (const nlohmann::json::exception& e) {
      refuse(resumed->path(), fmt::format("its history is malformed ({})", e.what()));
    }
  }
}

std::string Checkpointer::last_path() const {
  return (std::filesystem::path(dir_) / "last.safetensors").string();
}

std::string Checkpointer::best_path() const {
  return (std::filesystem::path(dir_) / "best.safetensors").string();
}

void Checkpointer::on_epoch_end(const EpochEnd& end) {
  const TrainState state = end.capture_state();
  const std::optional<double> v = epoch_metric(end.log, monitor_);
  const bool maximize = monitor_.find("acc") != std::string::npos;
  const bool improved = v && (!best_ || (maximize ? *v > *best_ : *v < *best_));
  if (improved) {
    best_ = v;
    best_epoch_ = end.log.epoch;
  }
  CheckpointFile f = make_checkpoint(model_, params_, run_, state);
  f.metadata["checkpoint_monitor"] = monitor_;
  f.metadata["checkpoint_best_epoch"] = std::to_string(best_epoch_);
  f.metadata["checkpoint_best"] = best_ ? fmt::format("{}", *best_) : "";
  const std::string bytes = serialize_checkpoint(f);
  write_file_atomic(last_path(), bytes);
  if (improved) write_file_atomic(best_path(), bytes);
  last_epoch_ = end.log.epoch;
}

}  // namespace cnn
