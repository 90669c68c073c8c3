#include "engine/train/verify.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <variant>

#include "engine/graph/executor.h"
#include "engine/graph/parameters.h"
#include "engine/graph/zoo.h"
#include "engine/perf/layer_ops.h"

namespace cnn {

TieGroups max_pool_tie_groups(const cnnk::Pool2dGeometry& g, const float* x, const float* y) {
  TieGroups up(static_cast<size_t>(g.input_size()));
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<int64_t>(i);
  auto root = [&](int64_t i) {
    while (up[i] != i) i = up[i] = up[up[i]];
    return i;
  };
  for (int64_t nc = 0; nc < int64_t(g.n) * g.c; ++nc) {
    const int64_t plane = nc * g.h * g.w;
    for (int p = 0; p < g.p; ++p)
      for (int q = 0; q < g.q; ++q) {
        const float top = y[(nc * g.p + p) * g.q + q];
        const int h0 = p * g.stride_h - g.pad_top, w0 = q * g.stride_w - g.pad_left;
        int64_t first = -1;
        for (int h = std::max(h0, 0); h < std::min(h0 + g.window_h, g.h); ++h)
          for (int w = std::max(w0, 0); w < std::min(w0 + g.window_w, g.w); ++w) {
            const int64_t i = plane + int64_t(h) * g.w + w;
            if (x[i] != top) continue;
            if (first < 0)
              first = i;
            else
              up[root(i)] = root(first);
          }
      }
  }
  for (size_t i = 0; i < up.size(); ++i) up[i] = root(static_cast<int64_t>(i));
  return up;
}

VerifyRow compare_tensors(const Tensor& ref_host, const Tensor& cand_host, double tolerance,
                          double off_fraction, const TieGroups& groups) {
  VerifyRow r;
  const float* a = ref_host.host();
  const float* b = cand_host.host();
  r.size = ref_host.numel();
  double max_ref = 0;
  for (int64_t i = 0; i < r.size; ++i)
    max_ref = std::max(max_ref, std::abs(static_cast<double>(a[i])));
  const double scale = std::max(max_ref, 1e-30);
  // Group sums, at the element that stands for the group.
  std::vector<double> sum_a, sum_b;
  std::vector<int64_t> members;
  if (!groups.empty()) {
    sum_a.assign(static_cast<size_t>(r.size), 0.0);
    sum_b = sum_a;
    members.assign(static_cast<size_t>(r.size), 0);
    for (int64_t i = 0; i < r.size; ++i) {
      const auto k = static_cast<size_t>(groups[static_cast<size_t>(i)]);
      sum_a[k] += a[i];
      sum_b[k] += b[i];
      ++members[k];
      if (members[k] == 2) ++r.tie_groups;
    }
  }
  bool finite = true;
  double diff2 = 0, ref2 = 0;
  for (int64_t i = 0; i < r.size; ++i) {
    const auto k = static_cast<size_t>(i);
    if (!groups.empty() && members[k] == 0) continue;  // judged with its group
    const double ra = groups.empty() ? a[i] : sum_a[k], rb = groups.empty() ? b[i] : sum_b[k];
    const double d = std::abs(rb - ra);
    finite = finite && std::isfinite(d);  // a NaN must fail, never compare as small
    r.max_abs = std::max(r.max_abs, d);
    if (!(d <= tolerance * scale)) r.off += groups.empty() ? 1 : members[k];
    diff2 += d * d;
    ref2 += ra * ra;
  }
  r.max_rel = r.max_abs / scale;
  r.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  r.tolerance = tolerance;
  r.ok = finite && static_cast<double>(r.off) <= off_fraction * static_cast<double>(r.size);
  return r;
}

namespace {

// Every trainable parameter's gradient on `params`' backend, one after another, on the
// host.
Tensor all_weight_gradients(const Parameters& params, Backend& backend) {
  int64_t total = 0;
  for (const Parameters::Entry& e : params.entries())
    if (e.trainable) total += e.grad.numel();
  Tensor all = Tensor::empty_host(Shape{total});
  int64_t at = 0;
  for (const Parameters::Entry& e : params.entries()) {
    if (!e.trainable) continue;
    const Tensor g = backend.to_host(e.grad);
    std::copy(g.host(), g.host() + g.numel(), all.host() + at);
    at += g.numel();
  }
  return all;
}

// A row of the chained run, judged by its relative L2 error alone.
VerifyRow chain_row(const Tensor& ref_host, const Tensor& cand_host, const std::string& pass,
                    double tolerance) {
  VerifyRow r = compare_tensors(ref_host, cand_host, tolerance, 1.0);
  r.layer = "(model)";
  r.type = "chained";
  r.pass = pass;
  r.off = 0;
  r.ok = std::isfinite(r.max_abs) && r.rel_l2 <= tolerance;
  return r;
}

}  // namespace

std::vector<VerifyRow> verify_model(const std::string& model_name, Backend& reference,
                                    Backend& candidate, const Tensor& x, const Tensor& labels,
                                    const VerifyOptions& options) {
  Model m_ref = build_model(model_name), m_cand = build_model(model_name);
  Parameters p_ref(m_ref, reference), p_cand(m_cand, candidate);
  p_ref.initialize(options.seed);
  p_cand.restore(p_ref.snapshot());
  const int64_t n = x.shape()[0];
  const int64_t classes = m_ref.output_node().shape[0];

  // The chained run: a training step's forward, loss and backward on each backend.
  struct Side {
    Backend& be;
    Model& model;
    Parameters& params;
    std::unique_ptr<Executor> exec;
  };
  Side sides[2] = {{reference, m_ref, p_ref, nullptr}, {candidate, m_cand, p_cand, nullptr}};
  for (Side& s : sides) {
    // keep_all: the comparison below reads every activation and gradient after backward.
    ExecutorOptions keep;
    keep.keep_all = true;
    s.exec = std::make_unique<Executor>(s.model, s.params, s.be, n, keep);
    const Tensor xd = s.be.to_device(x), yd = s.be.to_device(labels);
    const Tensor logits = s.exec->forward(xd, true, options.seed, 1);
    const Tensor dlogits = s.be.empty(Shape{n, classes});
    s.be.metrics_reset();
    s.be.softmax_xent({n, classes}, logits.data(), yd.data(), true, 1.0f / static_cast<float>(n),
                      dlogits.data());
    s.exec->backward(dlogits);
  }
  const Executor& ref = *sides[0].exec;
  const int out_id = m_ref.output_id();
  const VerifyRow chained_logits = chain_row(reference.to_host(ref.activation(out_id)),
                                             candidate.to_host(sides[1].exec->activation(out_id)),
                                             "forward", options.chain_tolerance);
  const VerifyRow chained_grads =
      chain_row(all_weight_gradients(p_ref, reference), all_weight_gradients(p_cand, candidate),
                "weight_grad", options.chain_tolerance);

  // Each layer on its own: the candidate's layer runs forward on the reference's inputs,
  // then backward on the reference's output and output gradient, so that every choice a
  // backward makes from them (the ReLU's mask, the max-pooling winners) is the
  // reference's, and each row measures that layer's kernels alone. The reference layer
  // runs that backward again too: where a tensor feeds several layers, the chained run
  // holds only the sum of their gradients, and each row wants its layer's part.
  RunContext ref_ctx{reference, true, options.seed, 1}, cand_ctx{candidate, true, options.seed, 1};
  auto ref_tensor = [&](int id) { return id == 0 ? reference.to_device(x) : ref.activation(id); };
  auto on_candidate = [&](const Tensor& t) { return candidate.to_device(reference.to_host(t)); };
  std::vector<VerifyRow> rows;
  const auto& ref_nodes = m_ref.nodes();
  for (const Node& node : m_cand.nodes()) {
    if (!node.layer) continue;
    const Node& ref_node = ref_nodes[static_cast<size_t>(node.id)];
    auto add = [&](const Tensor& a, const Tensor& b, const std::string& pass,
                   const std::string& param, double tol, const TieGroups& groups = {}) {
      const double off = pass == "forward" ? 0.0 : options.gradient_off_fraction;
      VerifyRow r = compare_tensors(reference.to_host(a), candidate.to_host(b), tol, off, groups);
      r.layer = node.name;
      r.type = node.layer->type();
      r.pass = pass;
      r.param = param;
      rows.push_back(r);
    };
    std::vector<Tensor> ref_in, in;
    for (int id : node.inputs) {
      ref_in.push_back(ref_tensor(id));
      in.push_back(on_candidate(ref_in.back()));
    }
    const Tensor ref_y = ref.activation(node.id), y = candidate.empty(ref_y.shape());
    node.layer->forward(cand_ctx, in, y);
    add(ref_y, y, "forward", "", options.forward_tolerance);
    if (!ref.has_gradient(node.id)) continue;

    std::vector<Tensor> ref_din, din;
    for (int id : node.inputs) {
      const bool wanted = ref.has_gradient(id);
      ref_din.push_back(wanted ? reference.empty(ref_tensor(id).shape()) : Tensor());
      din.push_back(wanted ? candidate.empty(ref_tensor(id).shape()) : Tensor());
    }
    const Tensor ref_dy = ref.gradient(node.id);
    ref_node.layer->backward(ref_ctx, ref_in, ref_y, ref_dy, ref_din);
    node.layer->backward(cand_ctx, in, on_candidate(ref_y), on_candidate(ref_dy), din);
    // The first input's gradient (none for the data, or behind a frozen base).
    if (!din.empty() && din[0].defined()) {
      // Max pooling: which of the inputs tying for a window's maximum gets its gradient is
      // each implementation's choice, so those are judged by group.
      TieGroups groups;
      const std::optional<perf::LayerOp> op = perf::layer_op(m_ref, node.id, n);
      const auto* pool = op ? std::get_if<cnnk::Pool2dGeometry>(&op->geometry) : nullptr;
      if (pool && pool->mode == cnnk::PoolMode::Max)
        groups = max_pool_tie_groups(*pool, reference.to_host(ref_in[0]).host(),
                                     reference.to_host(ref_y).host());
      add(ref_din[0], din[0], "input_grad", "", options.gradient_tolerance, groups);
    }
    for (const ParamSpec& spec : node.params) {
      const std::string name = node.name + "/" + spec.name;
      const auto& er = p_ref.find(name);
      if (!er.trainable) continue;
      add(er.grad, p_cand.find(name).grad, "weight_grad", spec.name, options.gradient_tolerance);
    }
  }
  rows.push_back(chained_logits);
  rows.push_back(chained_grads);
  return rows;
}

}  // namespace cnn
