#include "engine/train/verify.h"

#include <algorithm>
#include <cmath>

#include "engine/graph/executor.h"
#include "engine/graph/parameters.h"
#include "engine/graph/zoo.h"

namespace cnn {
namespace {

VerifyRow compare(const Tensor& ref_host, const Tensor& cand_host, double tolerance,
                  double off_fraction) {
  VerifyRow r;
  const float* a = ref_host.host();
  const float* b = cand_host.host();
  r.size = ref_host.numel();
  double max_ref = 0, diff2 = 0, ref2 = 0;
  for (int64_t i = 0; i < r.size; ++i)
    max_ref = std::max(max_ref, std::abs(static_cast<double>(a[i])));
  const double scale = std::max(max_ref, 1e-30);
  bool finite = true;
  for (int64_t i = 0; i < r.size; ++i) {
    const double d = std::abs(static_cast<double>(b[i]) - a[i]);
    finite = finite && std::isfinite(d);  // a NaN must fail, never compare as small
    r.max_abs = std::max(r.max_abs, d);
    if (!(d <= tolerance * scale)) ++r.off;
    diff2 += d * d;
    ref2 += static_cast<double>(a[i]) * a[i];
  }
  r.max_rel = r.max_abs / scale;
  r.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  r.tolerance = tolerance;
  r.ok = finite && static_cast<double>(r.off) <= off_fraction * static_cast<double>(r.size);
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

  std::vector<VerifyRow> rows;
  const auto& nodes = m_ref.nodes();
  for (const Node& node : nodes) {
    if (!node.layer) continue;
    auto add = [&](const Tensor& a, const Tensor& b, const std::string& pass,
                   const std::string& param, double tol) {
      const double off = pass == "forward" ? 0.0 : options.gradient_off_fraction;
      VerifyRow r = compare(reference.to_host(a), candidate.to_host(b), tol, off);
      r.layer = node.name;
      r.type = node.layer->type();
      r.pass = pass;
      r.param = param;
      rows.push_back(r);
    };
    add(sides[0].exec->activation(node.id), sides[1].exec->activation(node.id), "forward", "",
        options.forward_tolerance);
    const int in = node.inputs.empty() ? 0 : node.inputs[0];
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
