#include "engine/train/verify.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <variant>

#include "engine/core/rng.h"
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
// A layer whose output at each position depends on its input at that position alone
// (and on per-channel statistics): the same shape in and out, one input.
bool elementwise(const Node& node) {
  if (!node.layer || node.inputs.size() != 1) return false;
  const std::string type = node.layer->type();
  if (type == "Activation")  // softmax mixes the channels of a position
    return node.layer->config().value("activation", "") != "softmax";
  return type == "BatchNormalization" || type == "Dropout" || type == "SpatialDropout2D";
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
  Tensor input = Tensor::empty_host(x.shape());
  Rng jitter = Rng::stream(options.seed, 0x7E57);
  for (int64_t i = 0; i < x.numel(); ++i)
    input.host()[i] = x.host()[i] + static_cast<float>(options.input_jitter * jitter.uniform());

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
    const Tensor xd = s.be.to_device(input), yd = s.be.to_device(labels);
    const Tensor logits = s.exec->forward(xd, true, options.seed, 1);
    const Tensor dlogits = s.be.empty(Shape{n, classes});
    s.be.metrics_reset();
    s.be.softmax_xent({n, classes}, logits.data(), yd.data(), true, 1.0f / static_cast<float>(n),
                      dlogits.data());
    s.exec->backward(dlogits);
  }

  const auto& nodes = m_ref.nodes();
  // The tie groups each input-gradient row is judged by: a max-pooling layer's, and the
  // same for the element-wise layers before it (batch norm, activations, dropout), whose
  // input gradients hold each group's sum as well, whoever won its ties: tied inputs have
  // the same value, so the same slope and statistics. A layer that mixes positions
  // (convolution, dense) ends the chain; ReLU zeros, which are most ties, end it before,
  // in the ReLU's own backward.
  std::map<int, std::shared_ptr<const TieGroups>> groups_of;
  for (const Node& node : nodes) {
    const std::optional<perf::LayerOp> op =
        node.layer ? perf::layer_op(m_ref, node.id, n) : std::optional<perf::LayerOp>();
    const auto* pool = op ? std::get_if<cnnk::Pool2dGeometry>(&op->geometry) : nullptr;
    if (!pool || pool->mode != cnnk::PoolMode::Max) continue;
    const int in = node.inputs[0];
    const auto groups = std::make_shared<const TieGroups>(
        max_pool_tie_groups(*pool, reference.to_host(sides[0].exec->activation(in)).host(),
                            reference.to_host(sides[0].exec->activation(node.id)).host()));
    groups_of[node.id] = groups;
    for (int id = in; id > 0 && elementwise(nodes[static_cast<size_t>(id)]);
         id = nodes[static_cast<size_t>(id)].inputs[0])
      groups_of[id] = groups;
  }

  std::vector<VerifyRow> rows;
  for (const Node& node : nodes) {
    if (!node.layer) continue;
    const int in = node.inputs.empty() ? 0 : node.inputs[0];
    auto add = [&](const Tensor& a, const Tensor& b, const std::string& pass,
                   const std::string& param, double tol) {
      const double off = pass == "forward" ? 0.0 : options.gradient_off_fraction;
      static const TieGroups kAlone;
      const auto tied = groups_of.find(node.id);
      const TieGroups& groups =
          pass == "input_grad" && tied != groups_of.end() ? *tied->second : kAlone;
      VerifyRow r = compare_tensors(reference.to_host(a), candidate.to_host(b), tol, off, groups);
      r.layer = node.name;
      r.type = node.layer->type();
      r.pass = pass;
      r.param = param;
      rows.push_back(r);
    };
    add(sides[0].exec->activation(node.id), sides[1].exec->activation(node.id), "forward", "",
        options.forward_tolerance);
    if (in > 0 && sides[0].exec->has_gradient(in))
      add(sides[0].exec->gradient(in), sides[1].exec->gradient(in), "input_grad", "",
          options.gradient_tolerance);
    for (size_t k = 0; k < node.params.size(); ++k) {
      const std::string name = node.name + "/" + node.params[k].name;
      const auto& er = p_ref.find(name);
      const auto& ec = p_cand.find(name);
      if (!er.trainable) continue;
      add(er.grad, ec.grad, "weight_grad", node.params[k].name, options.gradient_tolerance);
    }
  }
  return rows;
}

}  // namespace cnn
