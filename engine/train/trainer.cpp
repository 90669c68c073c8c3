#include "engine/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "cnnk/random.h"
#include "engine/core/nvtx.h"
#include "engine/core/rng.h"
#include "engine/io/json_whole.h"

namespace cnn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Non-finite values of a host array: how many, and the first.
struct FiniteScan {
  int64_t bad = 0;
  int64_t first = -1;
  float example = 0.0f;
};

FiniteScan scan_finite(const std::vector<float>& v) {
  FiniteScan s;
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      if (s.bad++ == 0) {
        s.first = static_cast<int64_t>(i);
        s.example = v[i];
      }
    }
  return s;
}

std::string value_name(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

// A buffer shaped like `t` (at least one element allocated, so empty models work).
Tensor buffer_like(Backend& backend, const Tensor& t) {
  return backend.empty(Shape{std::max<int64_t>(t.numel(), 1)}).view(0, t.shape());
}

}  // namespace

std::optional<double> epoch_metric(const EpochLog& e, const std::string& name) {
  if (name == "loss") return e.loss;
  if (name == "accuracy") return e.accuracy;
  if (name == "val_loss") return e.val_loss;
  if (name == "val_accuracy") return e.val_accuracy;
  return std::nullopt;
}

std::string AugmentConfig::describe() const {
  if (!enabled()) return "none";
  std::string s = flip ? "random horizontal flip" : "";
  if (max_shift > 0)
    s += fmt::format("{}random shift by up to {} pixels (zero fill)", s.empty() ? "" : ", ",
                     max_shift);
  return s;
}

cnnk::StepSeed augment_seed(uint64_t run_seed, cnnk::Live<int64_t> step) {
  return {run_seed, 0xA0C3E47ull, step};
}

nlohmann::json fit_options_to_json(const FitOptions& o) {
  const EarlyStopping& es = o.early_stopping;
  return {{"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"validation_split", o.validation_split},
          {"shuffle", o.shuffle},
          {"optimizer", optimizer_to_json(o.optimizer)},
          {"lr_schedule", lr_schedule_to_json(o.lr_schedule)},
          {"augment", {{"flip", o.augment.flip}, {"max_shift", o.augment.max_shift}}},
          {"early_stopping",
           {{"enabled", es.enabled},
            {"monitor", es.monitor},
            {"patience", es.patience},
            {"min_delta", es.min_delta},
            {"restore_best_weights", es.restore_best_weights}}}};
}

void fit_options_from_json(const nlohmann::json& j, FitOptions& o) {
  o.epochs = json_whole<int>(j.at("epochs"));
  o.batch_size = json_whole<int64_t>(j.at("batch_size"));
  o.validation_split = j.at("validation_split").get<double>();
  o.shuffle = j.at("shuffle").get<bool>();
  o.optimizer = optimizer_from_json(j.at("optimizer"));
  o.lr_schedule = lr_schedule_from_json(j.at("lr_schedule"));
  o.augment.flip = j.at("augment").at("flip").get<bool>();
  o.augment.max_shift = json_whole<int>(j.at("augment").at("max_shift"));
  const nlohmann::json& es = j.at("early_stopping");
  o.early_stopping.enabled = es.at("enabled").get<bool>();
  o.early_stopping.monitor = es.at("monitor").get<std::string>();
  o.early_stopping.patience = json_whole<int>(es.at("patience"));
  o.early_stopping.min_delta = es.at("min_delta").get<double>();
  o.early_stopping.restore_best_weights = es.at("restore_best_weights").get<bool>();
}

int64_t validation_split_index(int64_t n, double fraction) {
  return static_cast<int64_t>(static_cast<double>(n) * (1.0 - fraction));
}

Trainer::Trainer(Model& model, Backend& backend, uint64_t seed)
    : model_(model), backend_(backend), seed_(seed), params_(model, backend) {
  params_.initialize(seed);
}

int Trainer::classes() const {
  const Shape& out = model_.output_node().shape;
  CNN_CHECK(out.rank() == 1, ConfigError,
            "model '{}' must end in a flat output of class scores, not {}", model_.name(),
            out.str());
  return static_cast<int>(out[0]);
}

Executor& Trainer::executor_for(int64_t batch) {
  if (!executor_ || executor_->max_batch() < batch)
    executor_ = std::make_unique<Executor>(model_, params_, backend_, batch);
  return *executor_;
}

std::string Trainer::explain_non_finite(Executor& exec, const Tensor& input, std::string* layer) {
  std::vector<std::string> notes;
  std::vector<float> host;
  // A non-finite parameter explains everything downstream of it.
  for (const Parameters::Entry& e : params_.entries()) {
    host.resize(static_cast<size_t>(e.value.numel()));
    params_.read(e, host.data());
    const FiniteScan s = scan_finite(host);
    if (s.bad > 0) {
      notes.push_back(fmt::format("parameter '{}' already holds {} non-finite values of {}", e.name,
                                  s.bad, host.size()));
      break;
    }
  }
  if (input.defined() && input.numel() > 0) {
    host.resize(static_cast<size_t>(input.numel()));
    backend_.download(input, host.data());
    const FiniteScan s = scan_finite(host);
    if (s.bad > 0)
      notes.push_back(
          fmt::format("the input batch itself holds {} non-finite values (the first "
                      "in sample {} of the batch)",
                      s.bad, s.first / input.shape().per_item()));
  }
  std::string tail;
  for (const std::string& n : notes) tail += "; " + n;
  // After a backward, the executor has reused the activations' memory: nothing to scan.
  if (!exec.activations_readable()) {
    if (layer) layer->clear();
    return "the layers' outputs were no longer available" + tail;
  }
  for (const Node& node : model_.nodes()) {
    if (!node.layer) continue;
    const Tensor out = exec.activation(node.id);
    host.resize(static_cast<size_t>(out.numel()));
    backend_.download(out, host.data());
    const FiniteScan s = scan_finite(host);
    if (s.bad == 0) continue;
    if (layer) *layer = node.name;
    return fmt::format(
        "the first layer whose output is not finite is '{}' ({}): {} of its {} values, e.g. {}{}",
        node.name, node.layer->type(), s.bad, host.size(), value_name(s.example), tail);
  }
  if (layer) layer->clear();
  return "every layer's output is finite: the loss itself overflowed" + tail;
}

void Trainer::check_parameters_finite(int epoch) {
  std::vector<float> host;
  for (const Parameters::Entry& e : params_.entries()) {
    host.resize(static_cast<size_t>(e.value.numel()));
    params_.read(e, host.data());
    const FiniteScan s = scan_finite(host);
    if (s.bad == 0) continue;
    const std::string layer = e.name.substr(0, e.name.find('/'));
    throw TrainingDiverged(
        fmt::format("training diverged in epoch {}: the loss stayed finite, but parameter '{}' "
                    "holds {} non-finite values of {}, e.g. {} (an activation such as ReLU can "
                    "turn a NaN into 0 and hide it from the loss); try a lower learning rate",
                    epoch, e.name, s.bad, host.size(), value_name(s.example)),
        epoch, 0, layer);
  }
}

void Trainer::diagnose_validation(const Tensor& images, const Tensor& labels, int64_t begin,
                                  int64_t count, int64_t batch_size, int epoch) {
  const int n_classes = classes();
  Executor& exec = executor_for(batch_size);
  for (int64_t b = begin; b < begin + count; b += batch_size) {
    const int64_t k = std::min(batch_size, begin + count - b);
    const Tensor x = images.slice_batch(b, k);
    backend_.metrics_reset();
    const Tensor logits = exec.forward(x, false);
    backend_.softmax_xent({k, n_classes}, logits.data(), labels.slice_batch(b, k).data(), true,
                          0.0f, nullptr);
    const Metrics m = backend_.metrics_read();
    if (std::isfinite(m.loss_sum)) continue;
    std::string layer;
    const std::string why = explain_non_finite(exec, x, &layer);
    throw TrainingDiverged(
        fmt::format("training stopped after epoch {}: the validation loss is {} (validation "
                    "samples {} to {}); {}",
                    epoch, value_name(m.loss_sum), b - begin, b - begin + k - 1, why),
        epoch, 0, layer);
  }
  throw TrainingDiverged(
      fmt::format("training stopped after epoch {}: the validation loss is not finite", epoch),
      epoch, 0, "");
}

History Trainer::fit(const Dataset& train, const FitOptions& opt, const TrainState* resume) {
  graph_stats_ = {};
  CNN_CHECK(opt.epochs >= 1, ConfigError, "epochs must be at least 1, got {}", opt.epochs);
  CNN_CHECK(opt.batch_size >= 1, ConfigError, "batch size must be at least 1, got {}",
            opt.batch_size);
  CNN_CHECK(opt.validation_split >= 0.0 && opt.validation_split < 1.0, ConfigError,
            "validation split must be in [0, 1), got {}", opt.validation_split);
  CNN_CHECK(opt.progress_reads_per_epoch >= 1, ConfigError,
            "progress reads per epoch must be at least 1, got {}", opt.progress_reads_per_epoch);
  CNN_CHECK(opt.finite_check_steps >= 0, ConfigError, "finite_check_steps must be >= 0, got {}",
            opt.finite_check_steps);
  const int n_classes = classes();
  CNN_CHECK(train.classes <= n_classes, ConfigError,
            "the data has {} classes but model '{}' outputs {}", train.classes, model_.name(),
            n_classes);
  const int64_t n = train.size();
  // Keras: the validation data is the last fraction, taken before any shuffling.
  const int64_t n_train = validation_split_index(n, opt.validation_split);
  const int64_t n_val = n - n_train;
  CNN_CHECK(n_train >= 1, ConfigError, "no training samples left after a validation split of {}",
            opt.validation_split);
  CNN_CHECK(opt.validation_split == 0.0 || n_val >= 1, ConfigError,
            "validation split {} of {} samples leaves no validation samples", opt.validation_split,
            n);
  const EarlyStopping& es = opt.early_stopping;
  EarlyStopper stopper(es);
  CNN_CHECK(!es.enabled || n_val > 0 || es.monitor.rfind("val_", 0) != 0, ConfigError,
            "early stopping monitors '{}' but there is no validation split", es.monitor);
  CNN_CHECK(opt.lr_schedule.kind != LrScheduleKind::Plateau || n_val > 0 ||
                opt.lr_schedule.monitor.rfind("val_", 0) != 0,
            ConfigError,
            "reduce on plateau monitors '{}' but there is no validation split (monitor loss or "
            "accuracy instead)",
            opt.lr_schedule.monitor);
  const AugmentConfig& aug = opt.augment;
  const Shape& item = model_.input_shape();
  if (aug.enabled()) {
    CNN_CHECK(item.rank() == 3, ConfigError,
              "augmentation needs image inputs (channels, height, width); model '{}' takes {}",
              model_.name(), item.str());
    CNN_CHECK(aug.max_shift >= 0 && aug.max_shift < std::min(item[1], item[2]), ConfigError,
              "the augmentation shift must be in [0, {}) for {}x{} images, got {}",
              std::min(item[1], item[2]), item[1], item[2], aug.max_shift);
  }

  // The whole dataset lives on the device for the run.
  const Tensor images = backend_.to_device(train.images);
  const Tensor labels = backend_.to_device(train.labels);
  const int64_t row = images.shape().per_item();
  Executor& exec = executor_for(opt.batch_size);
  // The executor outlives this fit; its hold on this fit's batch buffer must not (the next
  // fit would allocate its own while this one is still held).
  struct InputRelease {
    Executor& exec;
    ~InputRelease() { exec.release_input(); }
  } input_release{exec};
  const Tensor batch_x = backend_.empty(images.shape().with_batch(opt.batch_size));
  const Tensor batch_y = backend_.empty(Shape{opt.batch_size});
  const Tensor batch_raw =
      aug.enabled() ? backend_.empty(images.shape().with_batch(opt.batch_size)) : Tensor();
  const int64_t batches = (n_train + opt.batch_size - 1) / opt.batch_size;
  // The optimizer's slots are laid out as the flat values, gaps included.
  const int64_t n_flat = params_.values().numel();
  LrSchedule schedule(opt.lr_schedule, static_cast<double>(opt.optimizer.lr()), batches,
                      opt.epochs);
  OptimizerConfig optimizer_config = opt.optimizer;
  if (schedule.cycles_momentum()) {
    CNN_CHECK(opt.optimizer.kind != OptimizerKind::Rmsprop, ConfigError,
              "one-cycle cannot cycle the momentum of rmsprop, which has none: turn "
              "cycle_momentum off (--lr-no-cycle-momentum) or use sgd or adam");
    // As PyTorch's OneCycleLR, which sets SGD's momentum even where it was 0: the
    // optimizer then keeps a velocity (unless the cycle is 0 throughout). Each step sets
    // its own momentum before the update.
    if (optimizer_config.kind == OptimizerKind::Sgd)
      optimizer_config.momentum =
          static_cast<float>(std::max(opt.lr_schedule.base_momentum, opt.lr_schedule.max_momentum));
  }
  Optimizer optimizer(optimizer_config, params_, backend_);

  History history;
  Parameters::Snapshot best_weights;
  int first_epoch = 1;
  if (resume) {
    const TrainState& s = *resume;
    CNN_CHECK(s.train_samples == n_train, ConfigError,
              "the run to resume trained on {} samples per epoch, this one has {} (resuming needs "
              "the same data, --limit and validation split)",
              s.train_samples, n_train);
    CNN_CHECK(s.iterations == static_cast<int64_t>(s.epoch) * batches, ConfigError,
              "the run to resume took {} steps in {} epochs, this one takes {} per epoch (resuming "
              "needs the same batch size)",
              s.iterations, s.epoch, batches);
    CNN_CHECK(s.epoch < opt.epochs, ConfigError,
              "the run to resume has already completed {} epochs: epochs counts them too (as "
              "Keras's initial_epoch), so ask for more than {}",
              s.epoch, s.epoch);
    params_.restore(s.weights);
    const std::vector<Optimizer::Slot> slots = optimizer.slots();
    CNN_CHECK(slots.size() == s.optimizer_slots.size(), ConfigError,
              "the run to resume has {} optimizer state buffers, {} has {}",
              s.optimizer_slots.size(), opt.optimizer.describe(), slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      const TrainState::Slot& saved = s.optimizer_slots[i];
      CNN_CHECK(saved.name == slots[i].name && saved.values.size() == static_cast<size_t>(n_flat),
                ConfigError, "the optimizer state '{}' ({} values) does not fit '{}' ({} values)",
                saved.name, saved.values.size(), slots[i].name, n_flat);
      if (n_flat > 0) backend_.upload(saved.values.data(), slots[i].tensor.view(0, Shape{n_flat}));
    }
    optimizer.set_iterations(s.iterations);
    if (!s.schedule.empty()) schedule.restore_state(s.schedule);
    stopper.restore(s.stopping);
    best_weights = s.best_weights;
    history = s.history;
    first_epoch = s.epoch + 1;
  }

  // Finite checks: every step where a read is free, else at the reads (see FitOptions).
  const int64_t check_every = opt.finite_check_steps > 0    ? opt.finite_check_steps
                              : backend_.device().is_host() ? 1
                                                            : 0;
  const bool per_step = check_every == 1;
  // The state at the last good check, on the device, for the replay of deferred checks.
  struct Saved {
    Tensor values, state;
    std::vector<Tensor> slots;
    int64_t iterations = 0, step = 0;
  } saved;
  if (!per_step) {
    saved.values = buffer_like(backend_, params_.values());
    saved.state = buffer_like(backend_, params_.state());
    for (const Optimizer::Slot& s : optimizer.slots())
      saved.slots.push_back(buffer_like(backend_, s.tensor));
  }
  const auto take_snapshot = [&](int64_t step) {
    backend_.copy(params_.values(), saved.values);
    backend_.copy(params_.state(), saved.state);
    const std::vector<Optimizer::Slot> slots = optimizer.slots();
    for (size_t i = 0; i < slots.size(); ++i) backend_.copy(slots[i].tensor, saved.slots[i]);
    saved.iterations = optimizer.iterations();
    saved.step = step;
  };
  const auto restore_snapshot = [&] {
    backend_.copy(saved.values, params_.values());
    backend_.copy(saved.state, params_.state());
    const std::vector<Optimizer::Slot> slots = optimizer.slots();
    for (size_t i = 0; i < slots.size(); ++i) backend_.copy(saved.slots[i], slots[i].tensor);
    optimizer.set_iterations(saved.iterations);
  };

  // A step is host bookkeeping (begin_step, end_step) around device work that reads what
  // changes per step (the batch's rows, the step count, the rate) from the backend's step
  // scalars (cnnk/step.h), so the same device work can be captured once into a CUDA graph
  // and replayed. The device work has two halves: the forward and loss (whose metrics a
  // check reads), then the backward and the update.
  const cnnk::StepScalars* live = backend_.step_scalars();
  const cnnk::Live<int64_t> live_iteration(0, &live->iteration);
  int64_t cur_count = 0;
  Tensor cur_x;
  double last_lr = static_cast<double>(optimizer.learning_rate());
  const auto begin_step = [&](const IndexBuffer& idx, int64_t b) {
    const float lr = static_cast<float>(schedule.lr(optimizer.iterations()));
    optimizer.set_learning_rate(lr);
    if (const std::optional<double> m = schedule.momentum(optimizer.iterations()))
      optimizer.set_momentum(static_cast<float>(*m));
    last_lr = static_cast<double>(lr);
    const int64_t begin = b * opt.batch_size;
    backend_.set_step(optimizer.step_scalars(idx.get() + begin));
    cur_count = std::min(opt.batch_size, n_train - begin);
    cur_x = batch_x.slice_batch(0, cur_count);
  };
  const auto forward_loss = [&] {
    const int64_t count = cur_count;
    const Tensor x = batch_x.slice_batch(0, count), y = batch_y.slice_batch(0, count);
    const cnnk::Live<const int32_t*> rows(nullptr, &live->rows);
    {
      CNN_NVTX_RANGE("gather");
      if (aug.enabled()) {
        const Tensor raw = batch_raw.slice_batch(0, count);
        backend_.gather_rows(images.data(), row, rows, count, raw.data());
        cnnk::AugmentGeometry g;
        g.n = static_cast<int>(count);
        g.c = static_cast<int>(item[0]);
        g.h = static_cast<int>(item[1]);
        g.w = static_cast<int>(item[2]);
        g.flip = aug.flip;
        g.max_shift = aug.max_shift;
        backend_.augment(g, augment_seed(seed_, live_iteration), raw.data(), x.data());
      } else {
        backend_.gather_rows(images.data(), row, rows, count, x.data());
      }
      backend_.gather_rows(labels.data(), 1, rows, count, y.data());
    }
    const Tensor logits = exec.forward(x, true, seed_, optimizer.iterations(), live);
    CNN_NVTX_RANGE("loss");
    // The logits' gradient goes straight where backward wants it (no copy).
    backend_.softmax_xent({count, n_classes}, logits.data(), y.data(), true,
                          1.0f / static_cast<float>(count), exec.output_gradient(count).data());
  };
  const auto backward_update = [&] {
    exec.backward(exec.output_gradient(cur_count));
    CNN_NVTX_RANGE("optimizer");
    optimizer.launch_update(live);
  };
  const auto end_step = [&] { optimizer.advance(); };
  // Graphs per batch size (the last batch of an epoch may be smaller): a size's first step
  // runs uncaptured, allocating and choosing implementations; its second is captured.
  const bool use_graphs = opt.cuda_graphs && !per_step;
  std::map<int64_t, std::unique_ptr<Backend::StepGraph>> graphs;
  std::map<int64_t, int> uncaptured_runs;
  const auto run_step = [&] {
    const auto body = [&] {
      forward_loss();
      backward_update();
    };
    auto it = graphs.find(cur_count);
    if (it == graphs.end() && use_graphs && uncaptured_runs[cur_count] >= 1) {
      std::unique_ptr<Backend::StepGraph> g = backend_.capture(body);
      if (g) {
        // The full batch's graph is the one that runs nearly every step.
        if (cur_count == opt.batch_size) graph_stats_.nodes = g->nodes();
        it = graphs.emplace(cur_count, std::move(g)).first;
        ++graph_stats_.captured;
      } else {
        uncaptured_runs[cur_count] = std::numeric_limits<int>::min();  // not again
      }
    }
    if (it != graphs.end()) {
      it->second->replay();
      ++graph_stats_.replayed;
    } else {
      body();
      ++uncaptured_runs[cur_count];
    }
  };
  const auto diverged = [&](int epoch, int64_t b, double loss) {
    std::string layer;
    const std::string why = explain_non_finite(exec, cur_x, &layer);
    return TrainingDiverged(
        fmt::format("training diverged in epoch {} at step {} of {}: the loss is {}; {} (the "
                    "learning rate is {}: try a lower one)",
                    epoch, b + 1, batches, value_name(loss), why,
                    schedule.lr(optimizer.iterations())),
        epoch, b + 1, layer);
  };
  // A deferred check failed at step `upto`: replay from the last good state, one checked
  // step at a time, to stop at the failing batch with its activations.
  const auto replay = [&](int epoch, const IndexBuffer& idx, int64_t upto) {
    restore_snapshot();
    for (int64_t b = saved.step; b <= upto; ++b) {
      backend_.metrics_reset();
      begin_step(idx, b);
      forward_loss();
      const Metrics m = backend_.metrics_read();
      if (!std::isfinite(m.loss_sum)) throw diverged(epoch, b, m.loss_sum);
      backward_update();
      end_step();
    }
    throw TrainingDiverged(
        fmt::format("training diverged in epoch {} between steps {} and {} of {}, but a replay of "
                    "those steps from the last good state stayed finite (a nondeterministic "
                    "kernel?): try a lower learning rate",
                    epoch, saved.step + 1, upto + 1, batches),
        epoch, upto + 1, "");
  };

  TrainBegin begin_info{first_epoch - 1, opt.epochs, batches, n_train, n_val};
  for (FitCallback* cb : opt.callbacks) cb->on_train_begin(begin_info);
  std::vector<int32_t> order(static_cast<size_t>(n_train));
  const int64_t read_every = std::max<int64_t>(
      1, (batches + opt.progress_reads_per_epoch - 1) / opt.progress_reads_per_epoch);

  for (int epoch = first_epoch; epoch <= opt.epochs; ++epoch) {
    const auto t0 = Clock::now();
    // The order is a pure function of (seed, epoch): a resumed run draws the same.
    std::iota(order.begin(), order.end(), 0);
    if (opt.shuffle) Rng::stream(seed_, 0x5AFF1E, static_cast<uint64_t>(epoch)).shuffle(order);
    const IndexBuffer idx = backend_.upload_indices(order);
    for (FitCallback* cb : opt.callbacks) cb->on_epoch_begin(epoch, opt.epochs, batches);
    backend_.metrics_reset();
    if (!per_step) take_snapshot(0);
    int64_t last_read = 0;
    Clock::time_point last_read_time = Clock::now();
    Metrics epoch_metrics;  // read after the last step (batches >= 1)
    for (int64_t b = 0; b < batches; ++b) {
      // Under a graph replay the layer ranges appear once, at the capture; this one, always.
      CNN_NVTX_RANGE("step");
      begin_step(idx, b);
      if (per_step) {
        forward_loss();
        const Metrics m = backend_.metrics_read();
        if (!std::isfinite(m.loss_sum)) throw diverged(epoch, b, m.loss_sum);
        backward_update();
      } else {
        run_step();
      }
      end_step();
      const int64_t done = b + 1;
      Metrics running;
      bool have_running = false;
      if (done < batches) {
        const bool progress =
            opt.progress_reads && (done - last_read >= read_every ||
                                   seconds_since(last_read_time) >= opt.progress_read_seconds);
        const bool check = check_every > 1 && done - saved.step >= check_every;
        if (progress || check) {
          running = backend_.metrics_read();
          have_running = true;
          last_read = done;
          last_read_time = Clock::now();
          if (!per_step) {
            if (!std::isfinite(running.loss_sum)) replay(epoch, idx, b);
            take_snapshot(done);
          }
        }
      } else {
        // The epoch's figures, read once: the bar's last frame shows them, and the log.
        epoch_metrics = running = backend_.metrics_read();
        have_running = true;
      }
      for (FitCallback* cb : opt.callbacks)
        cb->on_batch_end(b, batches, have_running ? &running : nullptr);
      if (opt.on_batch_end) opt.on_batch_end(b, batches);
    }
    const Metrics& m = epoch_metrics;
    if (!std::isfinite(m.loss_sum)) {
      if (!per_step) replay(epoch, idx, batches - 1);
      throw diverged(epoch, batches - 1, m.loss_sum);
    }
    // A NaN can also hide from the loss (a ReLU maps it to 0): the weights tell.
    check_parameters_finite(epoch);
    EpochLog log;
    log.epoch = epoch;
    log.loss = m.mean_loss();
    log.accuracy = m.accuracy();
    log.lr = last_lr;
    if (n_val > 0) {
      const EvalResult v = evaluate_range(images, labels, n_train, n_val, opt.batch_size);
      if (!std::isfinite(v.loss))
        diagnose_validation(images, labels, n_train, n_val, opt.batch_size, epoch);
      log.val_loss = v.loss;
      log.val_accuracy = v.accuracy;
    }
    log.seconds = seconds_since(t0);
    schedule.on_epoch_end(epoch_metric(log, opt.lr_schedule.monitor));

    bool stop = false;
    if (es.enabled) {
      stop = stopper.update(epoch, epoch_metric(log, es.monitor).value());
      history.best_epoch = stopper.best_epoch();
      if (stopper.improved() && es.restore_best_weights) best_weights = params_.snapshot();
    }
    history.epochs.push_back(log);
    history.stopped_early = stop;
    const auto capture = [&] {
      TrainState s;
      s.epoch = epoch;
      s.iterations = optimizer.iterations();
      s.train_samples = n_train;
      s.weights = params_.snapshot();
      for (const Optimizer::Slot& slot : optimizer.slots()) {
        TrainState::Slot out{slot.name, std::vector<float>(static_cast<size_t>(n_flat))};
        if (n_flat > 0) backend_.download(slot.tensor.view(0, Shape{n_flat}), out.values.data());
        s.optimizer_slots.push_back(std::move(out));
      }
      s.schedule = schedule.state_json();
      s.stopping = stopper.state();
      if (es.enabled && es.restore_best_weights) s.best_weights = best_weights;
      s.history = history;
      return s;
    };
    const EpochEnd end{history.epochs.back(), history, opt.epochs, stop, capture};
    for (FitCallback* cb : opt.callbacks) cb->on_epoch_end(end);
    if (opt.on_epoch_end) opt.on_epoch_end(log, opt.epochs);
    if (stop) {
      if (es.restore_best_weights) {
        params_.restore(best_weights);
        history.restored_best = true;
      }
      break;
    }
    if (std::any_of(opt.callbacks.begin(), opt.callbacks.end(),
                    [](const FitCallback* cb) { return cb->stop_training(); }))
      break;
  }
  for (FitCallback* cb : opt.callbacks) cb->on_train_end(history);
  return history;
}

EvalResult Trainer::evaluate_range(const Tensor& images, const Tensor& labels, int64_t begin,
                                   int64_t count, int64_t batch_size) {
  const int n_classes = classes();
  Executor& exec = executor_for(batch_size);
  backend_.metrics_reset();
  for (int64_t b = begin; b < begin + count; b += batch_size) {
    const int64_t k = std::min(batch_size, begin + count - b);
    const Tensor logits = exec.forward(images.slice_batch(b, k), false);
    backend_.softmax_xent({k, n_classes}, logits.data(), labels.slice_batch(b, k).data(), true,
                          0.0f, nullptr);
  }
  const Metrics m = backend_.metrics_read();
  return {m.mean_loss(), m.accuracy(), m.count};
}

EvalResult Trainer::evaluate(const Dataset& data, int64_t batch_size) {
  CNN_CHECK(batch_size >= 1, ConfigError, "batch size must be at least 1, got {}", batch_size);
  CNN_CHECK(data.size() >= 1, ConfigError, "nothing to evaluate: the dataset is empty");
  return evaluate_on_device(backend_.to_device(data.images), backend_.to_device(data.labels),
                            batch_size);
}

EvalResult Trainer::evaluate_on_device(const Tensor& images, const Tensor& labels,
                                       int64_t batch_size) {
  CNN_CHECK(batch_size >= 1, ConfigError, "batch size must be at least 1, got {}", batch_size);
  const int64_t n = images.shape().rank() ? images.shape()[0] : 0;
  CNN_CHECK(n >= 1 && labels.shape() == Shape{n}, ConfigError,
            "nothing to evaluate, or {} labels for {} images", labels.shape().str(),
            images.shape().str());
  return evaluate_range(images, labels, 0, n, batch_size);
}

Tensor Trainer::predict(const Tensor& host_images, int64_t batch_size) {
  const int n_classes = classes();
  const int64_t n = host_images.shape()[0];
  const Tensor images = backend_.to_device(host_images);
  Executor& exec = executor_for(batch_size);
  const Tensor probs = backend_.empty(Shape{n, n_classes});
  for (int64_t b = 0; b < n; b += batch_size) {
    const int64_t k = std::min(batch_size, n - b);
    const Tensor logits = exec.forward(images.slice_batch(b, k), false);
    const Tensor out = probs.slice_batch(b, k);
    if (model_.softmax_folded())
      backend_.activation_forward(Activation::Softmax, {k, n_classes, 1}, logits.data(),
                                  out.data());
    else
      backend_.copy(logits, out);
  }
  return backend_.to_host(probs);
}

}  // namespace cnn
