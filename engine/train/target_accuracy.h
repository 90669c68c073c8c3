// Time to accuracy, as MLPerf-style training results state it: after every epoch the test
// set is evaluated, and the run ends at the first epoch whose test accuracy reaches the
// target, recording how long that took on a clock the caller chooses (the command line's
// starts with the process).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "engine/train/callbacks.h"
#include "engine/train/trainer.h"

namespace cnn {

class TargetAccuracy final : public FitCallback {
 public:
  // `evaluate` scores the test set with the current weights (evaluating with fit's batch
  // size or less reuses fit's executor); `seconds` reads the clock.
  TargetAccuracy(double target, std::function<EvalResult()> evaluate,
                 std::function<double()> seconds);

  void on_epoch_end(const EpochEnd& end) override;
  bool stop_training() const override { return reached_; }

  struct Point {
    int epoch = 0;
    double test_loss = 0, test_accuracy = 0;
    double seconds = 0;  // the clock when the evaluation ended
  };
  // Called after each evaluation (to print it as the run goes); may be empty.
  void set_on_evaluation(std::function<void(const Point&)> f) { on_evaluation_ = std::move(f); }
  const std::vector<Point>& points() const { return points_; }
  bool reached() const { return reached_; }
  double target() const { return target_; }
  // The report's "time_to_target": {target, reached, epoch, seconds_from_process_start,
  // test_accuracy, evaluations: [...]}; epoch and seconds are null when not reached.
  nlohmann::ordered_json report() const;

 private:
  double target_;
  std::function<EvalResult()> evaluate_;
  std::function<double()> seconds_;
  std::function<void(const Point&)> on_evaluation_;
  std::vector<Point> points_;
  bool reached_ = false;
};

}  // namespace cnn
