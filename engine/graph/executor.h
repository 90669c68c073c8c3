// Runs a model's graph on a backend: forward in node order, backward in reverse.
// Every activation and gradient buffer is planned once, for the largest batch, when the
// executor is built: buffers whose lifetimes in a training step never meet share memory,
// all carved from one arena (memory_plan.h), so a step never allocates. A smaller batch
// (the last of an epoch) uses views of them.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"

namespace cnn {

struct ExecutorOptions {
  // Gives every activation and gradient memory of its own, so that all of them stay
  // readable after backward (verify compares them layer by layer), at about twice the
  // memory. Without it, backward reuses the memory of activations and gradients it is done
  // with.
  bool keep_all = false;
};

// Sees each layer pass the executor runs, for `cnn profile`'s per-layer times: before()
// and after() bracket the layer's own forward or backward (where its NVTX range is).
enum class LayerPass { kForward, kBackward };
class ExecutorObserver {
 public:
  virtual ~ExecutorObserver() = default;
  virtual void before(const Node& /*node*/, LayerPass /*pass*/) {}
  virtual void after(const Node& /*node*/, LayerPass /*pass*/) {}
};

// What the plan costs: the arena, against one allocation per buffer.
struct MemoryReport {
  int64_t planned_bytes = 0;
  int64_t naive_bytes = 0;
  int buffers = 0;
};

class Executor {
 public:
  Executor(Model& model, Parameters& params, Backend& backend, int64_t max_batch,
           ExecutorOptions options = {});

  // x: [n, input shape...], n <= max_batch, on the backend's device. Returns the output
  // node's tensor (logits when the model's softmax is folded), a view valid until the
  // next forward (without keep_all, until the next backward returns).
  // `live`: the step is read from there when kernels run (a captured step; cnnk/step.h).
  Tensor forward(const Tensor& x, bool training, uint64_t seed = 0, int64_t step = 0,
                 const cnnk::StepScalars* live = nullptr);
  // Backpropagates dout (the output's gradient, same batch as the last forward) and
  // assigns every trainable parameter's gradient. Gradients are computed only where a
  // trainable parameter lies upstream: behind a frozen base, backward stops early.
  void backward(const Tensor& dout);
  // Where backward wants the output gradient of a batch of n: a loss that writes it here
  // (and passes this to backward) saves backward its copy. Its memory is shared with
  // buffers that are dead by then, so write it only between a training forward and the
  // backward that follows.
  Tensor output_gradient(int64_t n) const;

  int64_t max_batch() const { return max_batch_; }
  // The last pass's output and output gradient of node `id` (a layer, not the input),
  // as views of the current batch. Activations are readable after forward (and during
  // backward for the node being differentiated and its inputs); gradients during backward
  // for that node and its inputs. After backward returns, only with keep_all: otherwise
  // both throw, since backward reuses their memory.
  Tensor activation(int id) const;
  Tensor gradient(int id) const;
  // Whether activation() may be read now (see above).
  bool activations_readable() const;
  // Whether backward computes node `id`'s output gradient: it or a node upstream of it has
  // a trainable parameter.
  bool has_gradient(int id) const;
  Backend& backend() { return backend_; }
  // Lets go of the last forward's input (a backward needs it until then), so that a
  // caller's batch buffer does not outlive the caller through the executor.
  void release_input() { input_ = Tensor(); }
  const MemoryReport& memory_report() const { return memory_; }
  // The observer of the passes that follow (null: none); not owned.
  void set_observer(ExecutorObserver* observer) { observer_ = observer; }

 private:
  enum class Phase { kNone, kForward, kBackward, kBackwardDone };
  // Plans the activation, gradient and scratch buffers and carves them from arena_.
  void plan_buffers();

  Model& model_;
  Backend& backend_;
  int64_t max_batch_;
  ExecutorOptions options_;
  Tensor arena_;                                // every buffer below is a view of it
  std::vector<Tensor> acts_, grads_, scratch_;  // per node
  std::vector<int> consumers_;                  // per node: how many nodes read it
  std::vector<bool> needs_grad_;                // per node: see has_gradient
  Tensor input_;                                // the last forward's input
  RunContext last_ctx_;
  int64_t n_ = 0;
  Phase phase_ = Phase::kNone;
  MemoryReport memory_;
  ExecutorObserver* observer_ = nullptr;
};

}  // namespace cnn
