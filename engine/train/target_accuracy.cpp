#include "engine/train/target_accuracy.h"

#include <utility>

#include "engine/core/error.h"

namespace cnn {

TargetAccuracy::TargetAccuracy(double target, std::function<EvalResult()> evaluate,
                               std::function<double()> seconds)
    : target_(target), evaluate_(std::move(evaluate)), seconds_(std::move(seconds)) {
  CNN_CHECK(target > 0.0 && target <= 1.0, ConfigError,
            "the target accuracy must be in (0, 1], got {}", target);
}

void TargetAccuracy::on_epoch_end(const EpochEnd& end) {
  if (reached_) return;
  const EvalResult r = evaluate_();
  Point p;
  p.epoch = end.log.epoch;
  p.test_loss = r.loss;
  p.test_accuracy = r.accuracy;
  p.seconds = seconds_();
  points_.push_back(p);
  reached_ = r.accuracy >= target_;
  if (on_evaluation_) on_evaluation_(p);
}

nlohmann::ordered_json TargetAccuracy::report() const {
  nlohmann::ordered_json j;
  j["target"] = target_;
  j["reached"] = reached_;
  j["epoch"] = nullptr;
  j["seconds_from_process_start"] = nullptr;
  j["test_accuracy"] = nullptr;
  if (reached_) {
    j["epoch"] = points_.back().epoch;
    j["seconds_from_process_start"] = points_.back().seconds;
    j["test_accuracy"] = points_.back().test_accuracy;
  }
  j["evaluations"] = nlohmann::ordered_json::array();
  for (const Point& p : points_)
    j["evaluations"].push_back({{"epoch", p.epoch},
                                {"test_loss", p.test_loss},
                                {"test_accuracy", p.test_accuracy},
                                {"seconds_from_process_start", p.seconds}});
  return j;
}

}  // namespace cnn
