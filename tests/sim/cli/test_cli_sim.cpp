// The command line's GPU paths, end to end, on the simulated device (cnn_sim: the real
// `cnn` sources over the CUDA backend built against tests/sim): device listing, training
// with the native kernels and with cuDNN (captured into graphs by default), verify, bench,
// profile, evaluate, predict and filter. What a GPU adds (speed, the real libraries'
// numerics) is not judged here; the host code that drives it is, with a small synthetic
// dataset.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"
#include "engine/io/png.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using clitest::CliResult;
using clitest::contains;
using clitest::read_text;
using clitest::ScratchDir;
using clitest::write_split;
using clitest::write_text;
using nlohmann::json;

using clitest::kTinyModel;

class CliSim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = std::make_unique<ScratchDir>();
    write_split(data_->path(), "train", 160, 1);
    write_split(data_->path(), "t10k", 40, 2);
  }
  static void TearDownTestSuite() { data_.reset(); }
  void SetUp() override {
    fs::create_directories(work());
    write_text(work() / "tiny.json", kTinyModel);
  }
  fs::path work() const { return scratch_.path() / "work"; }
  std::string data() const { return data_->path().string(); }
  CliResult run(const std::vector<std::string>& args) const {
    return clitest::run_process(CNN_SIM_BINARY, args, work(), scratch_.path());
  }
  json read_json(const std::string& name) const {
    json j = json::parse(read_text(work() / name), nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << name << " is not JSON";
    return j;
  }

  static std::unique_ptr<ScratchDir> data_;
  ScratchDir scratch_;
};
std::unique_ptr<ScratchDir> CliSim::data_;

void expect_success(const CliResult& r) {
  ASSERT_FALSE(r.timed_out) << r.describe();
  ASSERT_TRUE(r.exited) << r.describe();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

TEST_F(CliSim, DevicesListsTheSimulatedGpu) {
  const CliResult r = run({"devices"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "cuda:0")) << r.out;
  EXPECT_TRUE(contains(r.out, "cnnk_sim")) << r.out;
  EXPECT_TRUE(contains(r.out, "loaded: cuDNN 9.0.0 (built with 9.0.0)")) << r.out;
}

// Training under each policy: the run completes, learns, reports the implementations that
// ran, and its steps after the first of each batch size replay a captured graph.
TEST_F(CliSim, TrainsUnderEachPolicyWithCapturedSteps) {
  for (const char* impl : {"native", "cudnn"}) {
    SCOPED_TRACE(impl);
    const std::string out = std::string("run-") + impl;
    const CliResult r =
        run({"train", "--model", "tiny.json", "--device", "auto", "--impl", impl, "--data", data(),
             "--epochs", "2", "--batch-size", "32", "--seed", "3", "--quiet", "--out", out});
    expect_success(r);
    const json rep = read_json(out + "/report.json");
    EXPECT_EQ(rep["device"], "cuda:0");
    EXPECT_EQ(rep["implementations"]["conv2d"], impl) << rep["implementations"].dump();
    EXPECT_EQ(rep["implementations"]["batchnorm"], impl);
    EXPECT_EQ(rep["implementations"]["pool2d"], impl);
    EXPECT_EQ(rep["implementations"]["dense"], "cublas");
    EXPECT_EQ(rep["cuda_graphs"]["enabled"], true);
    EXPECT_GE(rep["cuda_graphs"]["captured"].get<int>(), 1);
    EXPECT_GE(rep["cuda_graphs"]["replayed_steps"].get<int>(), 4);
    EXPECT_EQ(rep["epochs_run"], 2);
    const json& h = rep["history"];
    ASSERT_EQ(h.size(), 2u);
    EXPECT_LT(h[1]["loss"].get<double>(), h[0]["loss"].get<double>()) << h.dump();
    EXPECT_TRUE(fs::is_regular_file(work() / out / "checkpoints" / "last.safetensors"));
  }
}

// The same run with graphs and without: the replayed steps compute what launched ones do.
TEST_F(CliSim, CapturedAndUncapturedRunsAgree) {
  const std::vector<std::string> common = {"train",  "--model", "tiny.json", "--device", "cuda",
                                           "--impl", "native",  "--data",    data(),     "--epochs",
                                           "1",      "--seed",  "5",         "--quiet"};
  std::vector<std::string> with = common, without = common;
  with.insert(with.end(), {"--report", "with.json"});
  without.insert(without.end(), {"--no-cuda-graph", "--report", "without.json"});
  expect_success(run(with));
  expect_success(run(without));
  const json a = read_json("with.json"), b = read_json("without.json");
  EXPECT_GE(a["cuda_graphs"]["replayed_steps"].get<int>(), 1);
  EXPECT_EQ(b["cuda_graphs"]["replayed_steps"], 0);
  // The report counts the captured step's nodes, and none copies.
  const json& nodes = a["cuda_graphs"]["nodes"];
  EXPECT_GT(nodes["kernels"].get<int>(), 0) << nodes.dump();
  EXPECT_EQ(nodes["copies"], 0) << nodes.dump();
  EXPECT_EQ(nodes["total"].get<int>(),
            nodes["kernels"].get<int>() + nodes["memsets"].get<int>() + nodes["other"].get<int>())
      << nodes.dump();
  EXPECT_EQ(b["cuda_graphs"]["nodes"]["total"], 0);
  EXPECT_EQ(a["history"][0]["loss"], b["history"][0]["loss"]);
  EXPECT_EQ(a["test_accuracy"], b["test_accuracy"]);
}

// --sync-debug synchronizes after every launch, which a captured graph cannot: the run
// launches every step and says so in its report; without the flag it captures (above).
TEST_F(CliSim, SyncDebugLaunchesEveryStep) {
  expect_success(run({"train", "--model", "tiny.json", "--device", "cuda", "--data", data(),
                      "--epochs", "1", "--sync-debug", "--quiet", "--report", "sync.json"}));
  const json rep = read_json("sync.json");
  EXPECT_EQ(rep["gpu_options"]["sync_debug"], true) << rep["gpu_options"].dump();
  EXPECT_EQ(rep["cuda_graphs"]["captured"], 0) << rep["cuda_graphs"].dump();
  EXPECT_EQ(rep["cuda_graphs"]["replayed_steps"], 0) << rep["cuda_graphs"].dump();
  EXPECT_EQ(rep["epochs_run"], 1);
}

// NVIDIA_TF32_OVERRIDE=0 under --tf32: the libraries stay in FP32 while the native
// kernels do not, so the run says so on stderr and the report records the variable.
TEST_F(CliSim, Tf32OverrideIsSaidAndRecorded) {
  struct Env {
    Env() { setenv("NVIDIA_TF32_OVERRIDE", "0", 1); }
    ~Env() { unsetenv("NVIDIA_TF32_OVERRIDE"); }
  } env;
  const CliResult r = run({"train", "--model", "tiny.json", "--device", "cuda", "--data", data(),
                           "--epochs", "1", "--tf32", "--report", "tf32.json"});
  expect_success(r);
  EXPECT_TRUE(contains(r.err, "NVIDIA_TF32_OVERRIDE=0: cuBLAS and cuDNN stay in FP32")) << r.err;
  const json rep = read_json("tf32.json");
  EXPECT_EQ(rep["gpu_options"]["nvidia_tf32_override"], "0") << rep["gpu_options"].dump();
}

// --deterministic reaches the backend and the report: the device line and gpu_options say
// so, and every cuDNN convolution pass names an algorithm cuDNN reports deterministic.
TEST_F(CliSim, DeterministicCudnnRunSaysSoAndNamesItsAlgorithms) {
  const CliResult r =
      run({"train", "--model", "tiny.json", "--device", "cuda", "--impl", "cudnn", "--data", data(),
           "--epochs", "1", "--seed", "3", "--deterministic", "--report", "det.json"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "kernels: cudnn, deterministic")) << r.out;
  const json rep = read_json("det.json");
  EXPECT_EQ(rep["gpu_options"]["deterministic"], true) << rep["gpu_options"].dump();
  EXPECT_EQ(rep["gpu_options"]["impl"], "cudnn");
  int convs = 0;
  for (const auto& [op, choice] : rep["implementation_choices"].items()) {
    if (op.rfind("conv2d ", 0) != 0) continue;
    ++convs;
    const std::string c = choice.get<std::string>();
    EXPECT_EQ(c.rfind("cudnn (", 0), 0u) << op << ": " << c;
    EXPECT_FALSE(contains(c, "not deterministic")) << op << ": " << c;
  }
  EXPECT_GE(convs, 2) << rep["implementation_choices"].dump();
}

TEST_F(CliSim, VerifyChecksBothImplementationsAgainstTheReference) {
  const CliResult r = run({"verify", "--model", "tiny.json", "--data", data(), "--impls", "both",
                           "--json", "verify.json"});
  expect_success(r);
  const json rows = read_json("verify.json");
  ASSERT_TRUE(rows.is_array()) << rows.dump();
  bool native = false, cudnn = false;
  for (const json& row : rows.is_array() ? rows : json::array()) {
    EXPECT_EQ(row["ok"], true) << row.dump();
    native = native || row["impl"] == "native";
    cudnn = cudnn || row["impl"] == "cudnn";
  }
  EXPECT_TRUE(native && cudnn) << rows.dump();

  // --impls names the one to check.
  expect_success(run({"verify", "--model", "tiny.json", "--data", data(), "--impls", "cudnn",
                      "--json", "cudnn.json"}));
  const json only = read_json("cudnn.json");
  ASSERT_TRUE(only.is_array() && !only.empty()) << only.dump();
  for (const json& row : only) EXPECT_EQ(row["impl"], "cudnn") << row.dump();
}

// Under --tf32 the bounds are TF32's, and every row says which precision it checked; the
// chained rows (layer "(model)") have bounds of their own, on the relative L2 error. (The
// simulated GPU multiplies in FP32 whatever the math mode: the rows pass here by more than
// they would on tensor cores.)
TEST_F(CliSim, VerifyUnderTf32UsesTf32Bounds) {
  for (const bool tf32 : {false, true}) {
    SCOPED_TRACE(tf32);
    std::vector<std::string> args = {"verify",  "--model", "tiny.json", "--data",     data(),
                                     "--impls", "native",  "--json",    "verify.json"};
    if (tf32) args.push_back("--tf32");
    const CliResult r = run(args);
    expect_success(r);
    EXPECT_TRUE(contains(r.out, tf32 ? "(native, tf32) against the CPU reference"
                                     : "(native) against the CPU reference"))
        << r.out;
    const json rows = read_json("verify.json");
    ASSERT_TRUE(rows.is_array() && !rows.empty()) << rows.dump();
    int chained_rows = 0;
    for (const json& row : rows) {
      EXPECT_EQ(row["precision"], tf32 ? "tf32" : "fp32") << row.dump();
      const bool forward = row["pass"] == "forward";
      const bool chained = row["layer"] == "(model)";
      chained_rows += chained;
      const double want = chained ? (tf32 ? 5e-2 : 1e-2)
                          : tf32  ? (forward ? 5e-3 : 2e-2)
                                  : (forward ? 1e-4 : 1e-3);
      EXPECT_DOUBLE_EQ(row["tolerance"].get<double>(), want) << row.dump();
    }
    EXPECT_EQ(chained_rows, 2);
  }
}

TEST_F(CliSim, BenchTimesNativeAndCudnnForEveryPass) {
  const CliResult r =
      run({"bench", "--model", "tiny.json", "--device", "cuda", "--batch-sizes", "3", "--warmup",
           "1", "--repeats", "2", "--epochs", "0", "--json", "bench.json"});
  expect_success(r);
  const json rows = read_json("bench.json")["rows"];
  ASSERT_EQ(rows.size(), 7u) << rows.dump(1);  // conv 3 passes, batch norm 2, pooling 2
  for (const json& row : rows) {
    EXPECT_GE(row["native_ms"].get<double>(), 0.0) << row.dump();
    EXPECT_GE(row["cudnn_ms"].get<double>(), 0.0) << row.dump();
    EXPECT_TRUE(row["native_impl"].is_string()) << row.dump();
    EXPECT_TRUE(row["cudnn_impl"].is_string()) << row.dump();
  }
}

// The epoch after the layer rows runs on the backend --impl names.
TEST_F(CliSim, BenchTimesItsEpochUnderTheImplementationAsked) {
  for (const char* impl : {"native", "cudnn"}) {
    SCOPED_TRACE(impl);
    const std::string out = std::string("bench-") + impl + ".json";
    expect_success(
        run({"bench", "--model",       "tiny.json", "--device",        "cuda", "--data",
             data(),  "--batch-sizes", "2",         "--warmup",        "0",    "--repeats",
             "1",     "--epochs",      "1",         "--epoch-samples", "32",   "--batch-size",
             "16",    "--impl",        impl,        "--json",          out}));
    const json epoch = read_json(out)["epoch"];
    EXPECT_EQ(epoch["impl"], impl) << epoch.dump();
    EXPECT_EQ(epoch["samples"], 32) << epoch.dump();
  }
}

TEST_F(CliSim, ProfileBracketsMeasuredStepsAndNamesTheKernels) {
  const CliResult r =
      run({"profile", "--model", "tiny.json", "--device", "cuda", "--data", data(), "--limit", "64",
           "--batch-size", "16", "--steps", "2", "--warmup", "1", "--json", "profile.json"});
  expect_success(r);
  const json j = read_json("profile.json");
  EXPECT_EQ(j["steps"], 2);
  EXPECT_EQ(j["warmup"], 2);  // --warmup 1 is raised: one step launched, one captured
  // The measured steps replay a graph, as training does; the table's are launched.
  EXPECT_EQ(j["step_replayed_from_graph"], true);
  EXPECT_TRUE(contains(r.out, "replayed from a CUDA graph")) << r.out;
  EXPECT_TRUE(contains(r.out, "step graph: ")) << r.out;
  EXPECT_GT(j["step_graph_nodes"]["kernels"].get<int>(), 0) << j.dump(1);
  const json& layers = j["layers"];
  ASSERT_EQ(layers.size(), 10u) << j.dump(1);
  EXPECT_EQ(layers[0]["layer"], "c1");
  EXPECT_TRUE(contains(layers[0]["impl"].get<std::string>(), "native")) << layers[0].dump();

  expect_success(run({"profile", "--model", "tiny.json", "--device", "cuda", "--data", data(),
                      "--limit", "64", "--batch-size", "16", "--steps", "2", "--warmup", "0",
                      "--no-cuda-graph", "--json", "launched.json"}));
  EXPECT_EQ(read_json("launched.json")["step_replayed_from_graph"], false);
}

// A checkpoint trained on the device evaluates there to the run's own test figures, and
// predicts there what the CPU predicts from it.
TEST_F(CliSim, EvaluateAndPredictOnTheDevice) {
  expect_success(run({"train", "--model", "tiny.json", "--device", "cuda", "--data", data(),
                      "--epochs", "1", "--quiet", "--out", "run"}));
  const json rep = read_json("run/report.json");
  const CliResult ev = run({"evaluate", "--device", "cuda", "--data", data(), "--checkpoint",
                            "run/checkpoints/last.safetensors"});
  expect_success(ev);
  char expected[128];
  std::snprintf(expected, sizeof expected, "test: 40 images - loss %.4f - accuracy %.4f",
                rep["test_loss"].get<double>(), rep["test_accuracy"].get<double>());
  EXPECT_TRUE(contains(ev.out, expected)) << ev.out << "\nwanted: " << expected;

  const std::string images = (data_->path() / "t10k-images-idx3-ubyte").string();
  auto predict = [&](const char* device) {
    const CliResult r = run({"predict", "--device", device, "--checkpoint",
                             "run/checkpoints/last.safetensors", "--top", "1", images});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return r.out.substr(r.out.find('\n') + 1);  // after the line naming the device
  };
  const std::string on_gpu = predict("cuda"), on_cpu = predict("cpu");
  EXPECT_FALSE(on_gpu.empty());
  EXPECT_EQ(on_gpu, on_cpu);
}

// The classical filters through the device's convolution give the CPU's picture, for a
// gray picture and an RGBA one (channels filtered alike, alpha kept).
TEST_F(CliSim, FilterOnTheDeviceEqualsTheCpu) {
  Image8 gray(61, 37, 1), rgba(19, 11, 4);
  for (size_t i = 0; i < gray.pixels.size(); ++i)
    gray.pixels[i] = static_cast<uint8_t>((i * 37 + i / 61 * 11) % 251);
  for (size_t i = 0; i < rgba.pixels.size(); ++i)
    rgba.pixels[i] = static_cast<uint8_t>((i * 53 + 7) % 256);
  write_png((work() / "gray.png").string(), gray);
  write_png((work() / "rgba.png").string(), rgba);
  for (const char* picture : {"gray.png", "rgba.png"})
    for (const char* kernel : {"sobel-x", "gaussian", "log5", "sharpen"}) {
      SCOPED_TRACE(std::string(picture) + " " + kernel);
      expect_success(run({"filter", "--kernel", kernel, picture, "gpu.png", "--device", "cuda"}));
      expect_success(run({"filter", "--kernel", kernel, picture, "cpu.png", "--device", "cpu"}));
      const Image8 a = read_png((work() / "gpu.png").string()),
                   b = read_png((work() / "cpu.png").string());
      EXPECT_EQ(a.width, b.width);
      EXPECT_EQ(a.channels, b.channels);
      EXPECT_TRUE(a.pixels == b.pixels);
    }
}

}  // namespace
}  // namespace cnn
