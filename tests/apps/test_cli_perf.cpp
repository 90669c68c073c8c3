// The measuring commands run as a user runs them, on the CPU: `cnn bench` (layer rows
// with FLOPs and bytes, an epoch time, JSON), `cnn profile` (the per-layer table and its
// JSON), and what `cnn train` reports of them: the implementations that ran and the time
// to a target accuracy.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"
#include "engine/ops/cpu_gemm.h"
#include "support/cpu_gemm_name.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using clitest::CliResult;
using clitest::contains;
using clitest::read_text;
using clitest::ScratchDir;
using clitest::split_lines;
using clitest::write_text;
using nlohmann::json;

using clitest::kTinyModel;

using clitest::real_data_dir;

class CliPerf : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(work());
    write_text(work() / "tiny.json", kTinyModel);
  }
  fs::path work() const { return scratch_.path() / "work"; }
  CliResult run(const std::vector<std::string>& args) const {
    return clitest::run_process(CNN_BINARY, args, work(), scratch_.path());
  }
  json read_json(const std::string& name) const {
    const std::string text = read_text(work() / name);
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << name << " is not JSON:\n" << text;
    return j;
  }
  ScratchDir scratch_;
};

void expect_success(const CliResult& r) {
  ASSERT_FALSE(r.timed_out) << r.describe();
  ASSERT_TRUE(r.exited) << r.describe();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

// One line on stderr, exit status 1 or a CLI11 parse error, and the expected words.
void expect_clean_failure(const CliResult& r, const std::string& part) {
  ASSERT_TRUE(r.exited) << r.describe();
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.err, part)) << r.describe();
  EXPECT_LE(split_lines(r.err).size(), 2u) << r.describe();
}

TEST_F(CliPerf, BenchTimesEveryPassOfConvPoolAndBatchNormWithItsCost) {
  const CliResult r =
      run({"bench", "--model", "tiny.json", "--device", "cpu", "--batch-sizes", "2,3", "--warmup",
           "1", "--repeats", "2", "--epochs", "0", "--threads", "1", "--json", "bench.json"});
  expect_success(r);
  const json j = read_json("bench.json");
  EXPECT_EQ(j["model"], "tiny-perf");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["cpu_threads"], 1);
  EXPECT_EQ(j["cpu_gemm"], cnn::cpu_gemm_description());
  EXPECT_EQ(j["repeats"], 2);
  EXPECT_EQ(j["warmup"], 1);
  EXPECT_EQ(j["seed"], 42);
  EXPECT_TRUE(contains(r.out, "1 warm-up runs, median of 2 repeats")) << r.out;
  EXPECT_TRUE(j["epoch"].is_null());
  // Per batch size: conv (3 passes), batch norm (2), pooling (2).
  const json& rows = j["rows"];
  ASSERT_EQ(rows.size(), 14u) << j.dump(1);
  std::vector<std::string> seen;
  for (const json& row : rows) {
    seen.push_back(row["layer"].get<std::string>() + " " + row["pass"].get<std::string>());
    // The reported time is the median (here: the mean) of the two repeats it lists.
    ASSERT_EQ(row["native_repeats_ms"].size(), 2u) << row.dump();
    const double r0 = row["native_repeats_ms"][0].get<double>(),
                 r1 = row["native_repeats_ms"][1].get<double>();
    EXPECT_GT(std::min(r0, r1), 0.0) << row.dump();
    EXPECT_DOUBLE_EQ(row["native_ms"].get<double>(), (r0 + r1) / 2) << row.dump();
    EXPECT_TRUE(row["cudnn_ms"].is_null()) << "no cuDNN on the CPU";
    EXPECT_TRUE(row["cudnn_impl"].is_null());
    for (const char* key : {"model", "layer", "pass", "batch_size", "native_ms", "cudnn_ms",
                            "gflop", "gbytes", "native_tflops", "native_gbps", "native_impl"})
      EXPECT_TRUE(row.contains(key)) << key;
  }
  EXPECT_EQ(seen[0], "c1 forward");
  EXPECT_EQ(seen[1], "c1 backward-data");
  EXPECT_EQ(seen[2], "c1 backward-filter");
  EXPECT_EQ(seen[3], "bn forward");
  EXPECT_EQ(seen[4], "bn backward");
  EXPECT_EQ(seen[5], "pool forward");
  EXPECT_EQ(seen[6], "pool backward");
  EXPECT_EQ(rows[7]["batch_size"], 3);
  // c1 at batch 2: 2 * N*K*P*Q * C*R*S FLOPs; x, w, b in and y out, in float32.
  const json& c1 = rows[0];
  EXPECT_EQ(c1["native_impl"], test::cpu_gemm_impl_name());
  EXPECT_EQ(c1["geometry"], "n2 c1 28x28 -> k4 28x28, 3x3 s1x1 pad 1,1 dil 1x1");
  EXPECT_DOUBLE_EQ(c1["gflop"].get<double>(), 2.0 * 2 * 4 * 28 * 28 * 9 * 1e-9);
  EXPECT_DOUBLE_EQ(c1["gbytes"].get<double>(), 4.0 * (2 * 784 + 4 * 9 + 4 + 2 * 4 * 784) * 1e-9);
  EXPECT_EQ(rows[3]["native_impl"], "reference");
  // The table names every layer pass.
  for (const char* part : {"c1", "backward-filter", "bn", "pool", "native ms", "GB/s"})
    EXPECT_TRUE(contains(r.out, part)) << part << "\n" << r.out;
}

TEST_F(CliPerf, BenchTimesAnEpochOnTheFirstSamples) {
  REQUIRE_REAL_DATA();
  const CliResult r = run({"bench", "--model", "tiny.json", "--device", "cpu", "--data",
                           real_data_dir(), "--batch-sizes", "4", "--repeats", "1", "--warmup", "0",
                           "--epoch-samples", "96", "--batch-size", "32", "--json", "bench.json"});
  expect_success(r);
  const json e = read_json("bench.json")["epoch"];
  ASSERT_TRUE(e.is_object()) << r.describe();
  EXPECT_EQ(e["samples"], 96);
  EXPECT_EQ(e["batch_size"], 32);
  EXPECT_EQ(e["epochs"], 1);
  EXPECT_EQ(e["epoch_seconds"].size(), 1u);
  EXPECT_GT(e["seconds_per_epoch"].get<double>(), 0.0);
  EXPECT_NEAR(e["samples_per_second"].get<double>(), 96.0 / e["seconds_per_epoch"].get<double>(),
              1e-6);
  EXPECT_TRUE(contains(r.out, "samples/s")) << r.out;
  // --epoch-samples says which images the epochs read; bench has no --limit besides.
  expect_clean_failure(run({"bench", "--model", "tiny.json", "--device", "cpu", "--limit", "9"}),
                       "--limit");
}

TEST_F(CliPerf, BenchRefusesBadCounts) {
  expect_clean_failure(run({"bench", "--model", "tiny.json", "--repeats", "0"}), "--repeats");
  expect_clean_failure(run({"bench", "--model", "tiny.json", "--batch-sizes", "4,0"}),
                       "--batch-sizes");
}

TEST_F(CliPerf, ProfilePrintsAndWritesThePerLayerTable) {
  REQUIRE_REAL_DATA();
  const CliResult r = run({"profile",
                           "--model",
                           "tiny.json",
                           "--device",
                           "cpu",
                           "--data",
                           real_data_dir(),
                           "--limit",
                           "64",
                           "--batch-size",
                           "16",
                           "--steps",
                           "2",
                           "--warmup",
                           "1",
                           "--threads",
                           "2",
                           "--optimizer",
                           "rmsprop",
                           "--seed",
                           "9",
                           "--json",
                           "profile.json"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "cudaProfilerApi")) << r.out;
  EXPECT_TRUE(contains(r.out, "profile: tiny-perf, batch 16, rmsprop(lr=0.001")) << r.out;
  EXPECT_TRUE(contains(r.out, "(the rest: gather, loss, optimizer update)")) << r.out;
  const json j = read_json("profile.json");
  EXPECT_EQ(j["model"], "tiny-perf");
  EXPECT_EQ(j["batch_size"], 16);
  EXPECT_EQ(j["optimizer"].get<std::string>().rfind("rmsprop(lr=0.001, rho=0.9", 0), 0u)
      << j.dump();
  EXPECT_EQ(j["seed"], 9);
  EXPECT_EQ(j["cpu_threads"], 2);
  EXPECT_EQ(j["cpu_gemm"], cnn::cpu_gemm_description());
  EXPECT_EQ(j["steps"], 2);
  EXPECT_GT(j["step_ms"].get<double>(), 0.0);
  EXPECT_EQ(j["step_replayed_from_graph"], false);  // the CPU has no graphs
  EXPECT_TRUE(j["implementation_choices"].is_object());
  // Five layers, each forward and backward.
  const json& layers = j["layers"];
  ASSERT_EQ(layers.size(), 10u) << j.dump(1);
  double share = 0;
  for (const json& l : layers) share += l["share"].get<double>();
  EXPECT_LE(share, 1.0 + 1e-9);
  EXPECT_EQ(layers[0]["layer"], "c1");
  EXPECT_EQ(layers[0]["pass"], "forward");
  EXPECT_EQ(layers[0]["impl"], test::cpu_gemm_impl_name());
  EXPECT_DOUBLE_EQ(layers[0]["gflop"].get<double>(), 2.0 * 16 * 4 * 28 * 28 * 9 * 1e-9);
  EXPECT_EQ(layers[1]["layer"], "bn");
  EXPECT_EQ(layers[1]["impl"], "reference");
  EXPECT_TRUE(layers[3]["gflop"].is_null());  // Flatten has no op
  EXPECT_TRUE(layers[3]["impl"].is_null());
  EXPECT_EQ(layers[9]["layer"], "c1");
  EXPECT_EQ(layers[9]["pass"], "backward");
  // The first layer's backward has no input gradient to compute: the filter pass only.
  EXPECT_DOUBLE_EQ(layers[9]["gflop"].get<double>(), layers[0]["gflop"].get<double>());
}

// Without a GPU, verify checks the CPU's fast path against the reference loops: on
// --batch-size images of the training set, with weights drawn from --seed.
TEST_F(CliPerf, VerifyOnTheCpuChecksTheFastPathOnOneBatch) {
  fs::create_directories(work() / "data");
  clitest::write_split(work() / "data", "train", 40, 1);
  clitest::write_split(work() / "data", "t10k", 10, 2);
  const auto verify = [&](const std::string& seed, const std::string& out) {
    const CliResult r = run({"verify", "--model", "tiny.json", "--device", "cpu", "--data", "data",
                             "--batch-size", "4", "--seed", seed, "--json", out});
    expect_success(r);
    EXPECT_TRUE(contains(r.out, "batch 4")) << r.out;
    EXPECT_TRUE(contains(r.out, "verify: all layers within tolerance")) << r.out;
    return read_json(out);
  };
  const json a = verify("1", "a.json"), again = verify("1", "again.json"),
             b = verify("2", "b.json");
  ASSERT_TRUE(a.is_array() && !a.empty()) << a.dump();
  for (const json& row : a) {
    EXPECT_EQ(row["impl"], "openblas") << row.dump();
    EXPECT_EQ(row["ok"], true) << row.dump();
  }
  EXPECT_EQ(a, again);  // the same seed, the same weights and images: the same errors
  ASSERT_EQ(a.size(), b.size());
  bool differ = false;
  for (size_t i = 0; i < a.size(); ++i) differ = differ || a[i]["max_abs"] != b[i]["max_abs"];
  EXPECT_TRUE(differ) << "--seed 1 and --seed 2 gave the same errors everywhere";
}

TEST_F(CliPerf, TrainStopsAtTheTargetAndReportsTimeAndImplementations) {
  REQUIRE_REAL_DATA();
  const CliResult r =
      run({"train", "--model", "tiny.json", "--device", "cpu", "--data", real_data_dir(), "--limit",
           "1024", "--epochs", "5", "--target-accuracy", "0.3", "--report", "run.json"});
  expect_success(r);
  // One epoch of 1024 images takes this model to about 0.5 (chance is 0.1).
  EXPECT_TRUE(contains(r.out, "target accuracy 0.3 reached at epoch 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "implementations (per layer")) << r.out;
  const std::string gemm = test::cpu_gemm_impl_name();
  EXPECT_TRUE(contains(r.out, "forward " + gemm + ", backward " + gemm)) << r.out;
  const json j = read_json("run.json");
  EXPECT_EQ(j["epochs_run"], 1);
  const json& t = j["time_to_target"];
  EXPECT_EQ(t["target"], 0.3);
  EXPECT_EQ(t["reached"], true);
  EXPECT_EQ(t["epoch"], 1);
  const double seconds = t["seconds_from_process_start"].get<double>();
  EXPECT_GT(seconds, 0.0);
  EXPECT_LT(seconds, 600.0);
  EXPECT_GE(t["test_accuracy"].get<double>(), 0.3);
  // The same weights on the same set (at another batch size: a borderline logit may flip).
  EXPECT_NEAR(t["test_accuracy"].get<double>(), j["test_accuracy"].get<double>(), 2e-3);
  // The CPU records no per-shape choices; per layer it names each family's implementation.
  EXPECT_TRUE(j["implementation_choices"].is_object());
  ASSERT_EQ(j["layer_implementations"].size(), 4u) << j.dump(1);
  EXPECT_EQ(j["layer_implementations"][0]["layer"], "c1");
  EXPECT_EQ(j["layer_implementations"][0]["forward"], test::cpu_gemm_impl_name());
  EXPECT_EQ(j["layer_implementations"][1]["forward"], "reference");
}

TEST_F(CliPerf, TrainWithoutTargetHasNoTimeToTarget) {
  REQUIRE_REAL_DATA();
  const CliResult r =
      run({"train", "--model", "tiny.json", "--device", "cpu", "--data", real_data_dir(), "--limit",
           "64", "--epochs", "1", "--quiet", "--report", "run.json"});
  expect_success(r);
  const json j = read_json("run.json");
  EXPECT_FALSE(j.contains("time_to_target"));
  EXPECT_TRUE(j.contains("implementation_choices"));
  expect_clean_failure(run({"train", "--model", "tiny.json", "--target-accuracy", "1.5"}),
                       "--target-accuracy");
}

}  // namespace
}  // namespace cnn
