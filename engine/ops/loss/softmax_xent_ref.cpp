// Softmax cross-entropy reference, fused with its gradient. Per row, with
// lse = log(sum_j exp(z_j - max)) over the max-shifted logits:
//   loss = sum_j t_j * (lse - (z_j - max)),  dlogits_j = (softmax_j - t_j) * grad_scale.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/loss/softmax_xent.h"

namespace cnn::ref {
namespace {

// First index of the maximum (first on ties).
template <class T>
int64_t argmax(const T* v, int64_t count) {
  int64_t best = 0;
  for (int64_t j = 1; j < count; ++j)
    if (v[j] > v[best]) best = j;
  return best;
}

// Softmax of one row into p (double), returns lse of the max-shifted logits; also
// returns the max through `mx`.
template <class T>
double row_softmax(const T* z, int64_t classes, std::vector<double>& p, double& mx) {
  mx = static_cast<double>(z[0]);
  for (int64_t j = 1; j < classes; ++j) mx = std::max(mx, static_cast<double>(z[j]));
  double sum = 0.0;
  for (int64_t j = 0; j < classes; ++j) {
    p[static_cast<size_t>(j)] = std::exp(static_cast<double>(z[j]) - mx);
    sum += p[static_cast<size_t>(j)];
  }
  for (int64_t j = 0; j < classes; ++j) p[static_cast<size_t>(j)] /= sum;
  return std::log(sum);
}

// Shared body: target(row, j) gives t_j; label_of(row) gives the class the accuracy
// compares against.
template <class T, class Target, class Label>
double softmax_xent(const LossGeometry& g, const T* logits, Target target, Label label_of,
                    T grad_scale, T* dlogits, int64_t* correct) {
  CNN_CHECK(g.classes > 0, Error, "softmax cross-entropy needs at least one class");
  std::vector<double> p(static_cast<size_t>(g.classes));
  double loss = 0.0;
  int64_t hits = 0;
  for (int64_t row = 0; row < g.rows; ++row) {
    const T* z = logits + row * g.classes;
    const int64_t label = label_of(row);
    double mx = 0.0;
    const double lse = row_softmax(z, g.classes, p, mx);
    for (int64_t j = 0; j < g.classes; ++j) {
      const double t = target(row, j);
      if (t != 0.0) loss += t * (lse - (static_cast<double>(z[j]) - mx));
      if (dlogits)
        dlogits[row * g.classes + j] =
            static_cast<T>((p[static_cast<size_t>(j)] - t) * static_cast<double>(grad_scale));
    }
    if (argmax(z, g.classes) == label) ++hits;
  }
  if (correct) *correct = hits;
  return loss;
}

}  // namespace

template <class T>
double softmax_xent_sparse(const LossGeometry& g, const T* logits, const T* labels, T grad_scale,
                           T* dlogits, int64_t* correct) {
  // Every label is checked before anything is written.
  for (int64_t row = 0; row < g.rows; ++row) {
    const double label = static_cast<double>(labels[row]);
    CNN_CHECK(label >= 0 && label < static_cast<double>(g.classes) && label == std::floor(label),
              DataError, "label {} of row {} is not a class index in [0, {})", label, row,
              g.classes);
  }
  const auto label_of = [&](int64_t row) { return static_cast<int64_t>(labels[row]); };
  const auto target = [&](int64_t row, int64_t j) { return j == label_of(row) ? 1.0 : 0.0; };
  return softmax_xent(g, logits, target, label_of, grad_scale, dlogits, correct);
}

template <class T>
double softmax_xent_dense(const LossGeometry& g, const T* logits, const T* targets, T grad_scale,
                          T* dlogits, int64_t* correct) {
  const auto label_of = [&](int64_t row) { return argmax(targets + row * g.classes, g.classes); };
  const auto target = [&](int64_t row, int64_t j) {
    return static_cast<double>(targets[row * g.classes + j]);
  };
  return softmax_xent(g, logits, target, label_of, grad_scale, dlogits, correct);
}

template double softmax_xent_sparse<float>(const LossGeometry&, const float*, const float*, float,
                                           float*, int64_t*);
template double softmax_xent_sparse<double>(const LossGeometry&, const double*, const double*,
                                            double, double*, int64_t*);
template double softmax_xent_dense<float>(const LossGeometry&, const float*, const float*, float,
                                          float*, int64_t*);
template double softmax_xent_dense<double>(const LossGeometry&, const double*, const double*,
                                           double, double*, int64_t*);

}  // namespace cnn::ref
