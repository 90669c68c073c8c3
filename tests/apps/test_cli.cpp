// The `cnn` command line, run as a user runs it: the real binary in a fresh directory,
// its output and exit code checked. Covers summary, bad input of every kind, a short
// training run with its report and saved weights, early stopping, seeds, and devices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"
#include "engine/ops/cpu_gemm.h"

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

using clitest::real_data_dir;
const auto& kFiles = clitest::kFashionFiles;

// Each test runs the binary in its own empty directory; relative paths land there.
class Cli : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(work()); }

  fs::path work() const { return scratch_.path() / "work"; }
  std::string in_work(const std::string& name) const { return (work() / name).string(); }

  CliResult run(const std::vector<std::string>& args) const {
    return clitest::run_process(CNN_BINARY, args, work(), scratch_.path());
  }

  // A training run with the given flags; on the real data and the CPU unless they say
  // otherwise.
  CliResult train(std::initializer_list<std::string> flags) const {
    std::vector<std::string> args = {"train"};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto given = [&](const char* flag) {
      return std::find(flags.begin(), flags.end(), flag) != flags.end();
    };
    if (!given("--device")) args.insert(args.end(), {"--device", "cpu"});
    if (!given("--data")) args.insert(args.end(), {"--data", real_data_dir()});
    return run(args);
  }

  ScratchDir scratch_;
};

// ---------------------------------------------------------------------------- helpers

// True when `devices` reports a usable GPU (then GPU-absent checks do not apply).
bool gpu_usable(const CliResult& devices) {
  return devices.exited && devices.exit_code == 0 && !contains(devices.out, "no usable GPU");
}

// The run ended normally with exit code 0.
void expect_success(const CliResult& r) {
  ASSERT_FALSE(r.timed_out) << r.describe();
  ASSERT_TRUE(r.exited) << r.describe();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

bool is_cli11_parse_error_code(int code) {
  // CLI::ExitCodes: IncorrectConstruction (100) to ArgumentMismatch (114), BaseClass (127).
  return (code >= 100 && code <= 114) || code == 127;
}

// Bad input: the process exits (no signal, no abort) with 1 (the app's errors) or a CLI11
// parse error code, writes one clear message to stderr that contains every `expected`
// part, and no sign of a crash or an escaped exception.
void expect_clean_failure(const CliResult& r, const std::vector<std::string>& expected) {
  ASSERT_FALSE(r.timed_out) << r.describe();
  ASSERT_TRUE(r.exited) << "the process died instead of exiting: " << r.describe();
  ASSERT_TRUE(r.exit_code == 1 || is_cli11_parse_error_code(r.exit_code)) << r.describe();
  const std::vector<std::string> lines = split_lines(r.err);
  ASSERT_FALSE(lines.empty()) << "no message on stderr: " << r.describe();
  if (r.exit_code == 1) {
    // The app's own errors: exactly one line, "cnn: error: ...".
    EXPECT_EQ(lines.size(), 1u) << r.describe();
    EXPECT_EQ(lines[0].rfind("cnn: error: ", 0), 0u) << r.describe();
  } else {
    // CLI11: the message, then "Run with --help for more information."
    EXPECT_LE(lines.size(), 2u) << r.describe();
    EXPECT_FALSE(lines[0].empty()) << r.describe();
  }
  for (const std::string& part : expected)
    EXPECT_TRUE(contains(r.err, part)) << "stderr lacks '" << part << "': " << r.describe();
  for (const char* crash : {"internal error", "terminate called", "what():", "Segmentation",
                            "Aborted", "core dumped", "AddressSanitizer"})
    EXPECT_FALSE(contains(r.err, crash)) << r.describe();
}

// Reads a JSON report; fails the test (returns null) when it is absent or not JSON.
json read_report(const fs::path& path) {
  const std::string text = read_text(path);
  EXPECT_FALSE(text.empty()) << "no report at " << path;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "the report is not JSON:\n" << text;
  return j;
}

std::string fixed4(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// The first capture group of `pattern` in `text`, or empty.
std::string find_first(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return {};
  return m[1].str();
}

// "1,413,834" -> 1413834.
int64_t parse_count(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  return std::stoll(s);
}

// v * n is a whole number: an accuracy over n samples is a count over n.
bool is_fraction_of(double v, int64_t n) {
  const double count = v * static_cast<double>(n);
  return std::fabs(count - std::round(count)) < 1e-6;
}

// One row of the summary table: " name (Type)   (None, ...)   1234".
struct SummaryRow {
  std::string name, type, shape;
  int64_t params = 0;
};

std::vector<SummaryRow> summary_rows(const std::string& text) {
  static const std::regex row(R"(^ (\S+) \((\w+)\)\s+(\(None[^)]*\))\s+([0-9,]+)\s*$)");
  std::vector<SummaryRow> rows;
  for (const std::string& line : split_lines(text)) {
    std::smatch m;
    if (std::regex_match(line, m, row))
      rows.push_back({m[1].str(), m[2].str(), m[3].str(), parse_count(m[4].str())});
  }
  return rows;
}

// ---------------------------------------------------------------------------- summary

struct SeedModel {
  const char* name;
  const char* total;  // as Keras prints it
  int64_t params;
};

void PrintTo(const SeedModel& m, std::ostream* os) { *os << m.name; }

class CliSummary : public Cli, public ::testing::WithParamInterface<SeedModel> {};

TEST_P(CliSummary, PrintsTheKerasTableWithTheSeedsParameterCount) {
  const SeedModel& m = GetParam();
  const CliResult r = run({"summary", "--model", m.name});
  expect_success(r);
  EXPECT_TRUE(r.err.empty()) << r.describe();
  EXPECT_TRUE(contains(r.out, std::string("Model: \"") + m.name + "\"")) << r.out;
  const std::string header = find_first(r.out, R"((Layer \(type\)\s+Output Shape\s+Param #))");
  EXPECT_FALSE(header.empty()) << r.out;
  EXPECT_TRUE(contains(r.out, std::string("Total params: ") + m.total + " ")) << r.out;
  EXPECT_TRUE(contains(r.out, std::string("Trainable params: ") + m.total + " ")) << r.out;
  EXPECT_TRUE(contains(r.out, "Non-trainable params: 0 ")) << r.out;

  // The Param # column adds up to the total.
  const std::vector<SummaryRow> rows = summary_rows(r.out);
  ASSERT_GE(rows.size(), 3u) << r.out;
  int64_t sum = 0;
  for (const SummaryRow& row : rows) sum += row.params;
  EXPECT_EQ(sum, m.params) << r.out;
  EXPECT_EQ(rows.back().type, "Dense") << r.out;
  EXPECT_TRUE(contains(rows.back().shape, "10)")) << "the last layer outputs 10 classes";
}

INSTANTIATE_TEST_SUITE_P(SeedModels, CliSummary,
                         ::testing::Values(SeedModel{"fashion-cnn", "1,413,834", 1413834},
                                           SeedModel{"mnist-cnn", "30,762", 30762},
                                           SeedModel{"mnist-functional", "104,202", 104202},
                                           SeedModel{"mnist-nopool", "712,202", 712202}),
                         [](const ::testing::TestParamInfo<SeedModel>& p) {
                           std::string n = p.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST_F(Cli, SummaryOfFashionCnnListsEachLayerWithItsParameterCount) {
  const CliResult r = run({"summary", "--model", "fashion-cnn"});
  expect_success(r);
  const std::vector<SummaryRow> rows = summary_rows(r.out);
  const std::vector<std::string> types = {
      "Conv2D",       "MaxPooling2D", "Conv2D", "Conv2D",  "MaxPooling2D", "Conv2D",  "Conv2D",
      "MaxPooling2D", "Flatten",      "Dense",  "Dropout", "Dense",        "Dropout", "Dense"};
  std::vector<std::string> got_types;
  std::vector<int64_t> weighted;
  for (const SummaryRow& row : rows) {
    got_types.push_back(row.type);
    if (row.params != 0) weighted.push_back(row.params);
  }
  EXPECT_EQ(got_types, types) << r.out;
  EXPECT_EQ(weighted,
            (std::vector<int64_t>{3200, 73856, 147584, 295168, 590080, 295040, 8256, 650}))
      << r.out;
  // Layer names are unique, Keras style: conv2d, conv2d_1, ...
  std::vector<std::string> names;
  for (const SummaryRow& row : rows) names.push_back(row.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end()) << r.out;
}

TEST_F(Cli, SummaryOfAnUnknownModelNamesTheKnownOnes) {
  const CliResult r = run({"summary", "--model", "resnet-9000"});
  expect_clean_failure(
      r, {"resnet-9000", "fashion-cnn", "mnist-cnn", "mnist-functional", "mnist-nopool"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.describe();
}

TEST_F(Cli, TrainWithAnUnknownModelFailsBeforeLoadingData) {
  const CliResult r = run({"train", "--model", "resnet-9000", "--data", "no-such-dir"});
  expect_clean_failure(r, {"resnet-9000", "mnist-cnn"});
}

// ------------------------------------------------------------------------ bad flags

struct BadFlags {
  const char* label;
  std::vector<std::string> args;
  std::vector<std::string> expected;  // parts of the message
};

void PrintTo(const BadFlags& c, std::ostream* os) {
  *os << c.label << ":";
  for (const std::string& a : c.args) *os << " " << a;
}

class CliBadFlags : public Cli, public ::testing::WithParamInterface<BadFlags> {};

TEST_P(CliBadFlags, FailWithOneMessageAndNoCrash) {
  const BadFlags& c = GetParam();
  const CliResult r = run(c.args);
  expect_clean_failure(r, c.expected);
  EXPECT_NE(r.exit_code, 0);
  // Nothing ran: no data was loaded, no file written.
  EXPECT_FALSE(contains(r.out, "data:")) << r.describe();
  EXPECT_TRUE(fs::is_empty(work())) << r.describe();
}

INSTANTIATE_TEST_SUITE_P(
    ParseErrors, CliBadFlags,
    ::testing::Values(
        BadFlags{"UnknownFlag", {"train", "--no-such-flag"}, {"--no-such-flag"}},
        BadFlags{"BatchSizeZero", {"train", "--batch-size", "0"}, {"--batch-size"}},
        BadFlags{"BatchSizeNotANumber", {"train", "--batch-size", "abc"}, {"--batch-size"}},
        BadFlags{"EpochsZero", {"train", "--epochs", "0"}, {"--epochs"}},
        BadFlags{"ValidationSplitAboveOne",
                 {"train", "--validation-split", "1.5"},
                 {"--validation-split"}},
        BadFlags{"ValidationSplitNegative",
                 {"train", "--validation-split", "-0.1"},
                 {"--validation-split"}},
        BadFlags{"UnknownOptimizer", {"train", "--optimizer", "foo"}, {"--optimizer", "foo"}},
        BadFlags{"UnknownMonitor", {"train", "--monitor", "f1"}, {"--monitor", "f1"}},
        BadFlags{"NegativeLearningRate", {"train", "--lr", "-1"}, {"--lr"}},
        BadFlags{"NegativeLimit", {"train", "--limit", "-5"}, {"--limit"}},
        BadFlags{"NegativePatience", {"train", "--patience", "-1"}, {"--patience"}},
        BadFlags{"UnknownDataset", {"train", "--dataset", "cifar10"}, {"--dataset"}},
        BadFlags{"MissingFlagValue", {"train", "--epochs"}, {"--epochs"}},
        BadFlags{"NoCommand", {}, {"subcommand"}},
        BadFlags{"MisspeltCommand", {"trian", "--model", "mnist-cnn"}, {"trian", "train"}},
        BadFlags{"UnknownTopLevelOption", {"--bogus"}, {"--bogus"}},
        BadFlags{"SummaryWithoutModel", {"summary"}, {"--model"}},
        BadFlags{"EvaluateWithoutWeights", {"evaluate"}, {"--weights"}},
        // Flags a command would accept and ignore are refused there.
        BadFlags{"EvaluateWithLimit", {"evaluate", "--limit", "5"}, {"--limit"}},
        BadFlags{"EvaluateWithSeed", {"evaluate", "--seed", "5"}, {"--seed"}},
        BadFlags{"VerifyWithImpl", {"verify", "--impl", "cudnn"}, {"--impl"}},
        BadFlags{"VerifyWithLimit", {"verify", "--limit", "5"}, {"--limit"}},
        BadFlags{"EvaluateWithMissingWeightsFile",
                 {"evaluate", "--weights", "no-such-file.safetensors"},
                 {"--weights", "no-such-file.safetensors"}}),
    [](const ::testing::TestParamInfo<BadFlags>& p) { return std::string(p.param.label); });

// ------------------------------------------------------------------------ bad device

TEST_F(Cli, DeviceCudaWithoutAGpuSaysWhy) {
  REQUIRE_REAL_DATA();
  if (gpu_usable(run({"devices"}))) GTEST_SKIP() << "a GPU is usable here";
  const CliResult r = train({"--device", "cuda", "--limit", "64", "--report", "r.json"});
  expect_clean_failure(r, {"'cuda'", "GPU"});
  // The reason comes from the probe: no driver, no device, or a build without CUDA.
  EXPECT_TRUE(contains(r.err, "driver") || contains(r.err, "device") || contains(r.err, "CUDA"))
      << r.describe();
  EXPECT_FALSE(fs::exists(in_work("r.json")));
}

TEST_F(Cli, DeviceCudaIndexWithoutAGpuFailsCleanly) {
  REQUIRE_REAL_DATA();
  if (gpu_usable(run({"devices"}))) GTEST_SKIP() << "a GPU is usable here";
  const CliResult r =
      run({"evaluate", "--device", "cuda:3", "--data", real_data_dir(), "--weights", CNN_BINARY});
  expect_clean_failure(r, {"'cuda:3'", "GPU"});
}

TEST_F(Cli, UnknownDeviceNamesTheAcceptedForms) {
  REQUIRE_REAL_DATA();
  for (const char* device : {"bogus", "cuda:x", "cuda:", "gpu0"}) {
    SCOPED_TRACE(device);
    const CliResult r = train({"--device", device, "--limit", "64"});
    expect_clean_failure(r, {std::string("'") + device + "'", "cpu", "cuda:N", "auto"});
  }
}

// ------------------------------------------------------------------------ bad data

TEST_F(Cli, DataDirectoryThatDoesNotExist) {
  const CliResult r = run({"train", "--data", "no/such/dir", "--device", "cpu"});
  expect_clean_failure(r, {"no/such/dir", "does not exist"});
  EXPECT_EQ(r.exit_code, 1);
}

TEST_F(Cli, EmptyDataDirectoryListsTheMissingFiles) {
  fs::create_directories(work() / "empty");
  const CliResult r = run({"train", "--data", "empty", "--device", "cpu"});
  expect_clean_failure(r, {"empty", "missing", "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"});
  EXPECT_EQ(r.exit_code, 1);
}

TEST_F(Cli, PartialDataDirectoryListsOnlyWhatIsMissing) {
  REQUIRE_REAL_DATA();
  const fs::path dir = work() / "partial";
  fs::create_directories(dir);
  for (const char* name : {kFiles[0], kFiles[1], kFiles[3]})
    fs::copy_file(fs::path(real_data_dir()) / name, dir / name);
  const CliResult r = run({"evaluate", "--data", "partial", "--weights", CNN_BINARY});
  expect_clean_failure(r, {"missing", "t10k-images-idx3-ubyte"});
  EXPECT_FALSE(contains(r.err, "train-images")) << r.describe();
  EXPECT_FALSE(contains(r.err, "t10k-labels")) << r.describe();
}

// A copy of the real data whose train images file is replaced by `train_images` (named
// `train_images_name`).
fs::path data_with_bad_train_images(const fs::path& dir, const std::string& train_images_name,
                                    const std::string& train_images) {
  fs::create_directories(dir);
  for (const char* name : {kFiles[1], kFiles[2], kFiles[3]})
    fs::copy_file(fs::path(real_data_dir()) / name, dir / name);
  write_text(dir / train_images_name, train_images);
  return dir;
}

TEST_F(Cli, TruncatedGzipTrainImagesFile) {
  REQUIRE_REAL_DATA();
  const std::string whole = read_text(fs::path(real_data_dir()) / kFiles[0]);
  ASSERT_GT(whole.size(), 100000u);
  data_with_bad_train_images(work() / "trunc", kFiles[0], whole.substr(0, whole.size() / 3));
  const CliResult r =
      train({"--data", "trunc", "--limit", "64", "--report", "r.json", "--save", "w.st"});
  expect_clean_failure(r, {"train-images-idx3-ubyte.gz", "truncated"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(fs::exists(in_work("r.json")));
  EXPECT_FALSE(fs::exists(in_work("w.st")));
}

TEST_F(Cli, TruncatedRawTrainImagesFile) {
  REQUIRE_REAL_DATA();
  // A raw IDX header promising 60000 x 28 x 28 images, followed by 5000 bytes.
  std::string idx = {0, 0, 8, 3, 0, 0, static_cast<char>(0xea), 0x60, 0, 0, 0, 28, 0, 0, 0, 28};
  idx += std::string(5000, '\0');
  data_with_bad_train_images(work() / "raw", "train-images-idx3-ubyte", idx);
  const CliResult r = train({"--data", "raw", "--limit", "64"});
  expect_clean_failure(r, {"train-images-idx3-ubyte", "truncated"});
}

TEST_F(Cli, GarbageTrainImagesFile) {
  REQUIRE_REAL_DATA();
  data_with_bad_train_images(work() / "garbage", "train-images-idx3-ubyte",
                             "this is not an IDX file at all, just some text\n");
  const CliResult r = train({"--data", "garbage", "--limit", "64"});
  expect_clean_failure(r, {"train-images-idx3-ubyte"});
}

TEST_F(Cli, ValidationSplitThatLeavesNoTrainingSamples) {
  REQUIRE_REAL_DATA();
  const CliResult r = train({"--limit", "1", "--validation-split", "0.5"});
  expect_clean_failure(r, {"validation split"});
}

TEST_F(Cli, EarlyStoppingOnValidationMetricWithoutASplit) {
  REQUIRE_REAL_DATA();
  const CliResult r = train({"--limit", "64", "--patience", "1", "--monitor", "val_loss"});
  expect_clean_failure(r, {"val_loss", "validation split"});
}

TEST_F(Cli, ThreadCountOutsideItsRangeIsRefused) {
  for (const char* threads : {"-1", "5000", "two"}) {
    const CliResult r = train({"--limit", "64", "--threads", threads});
    expect_clean_failure(r, {"--threads"});
  }
}

// ------------------------------------------------------------------------ bad outputs

TEST_F(Cli, SaveIntoAMissingDirectoryFailsBeforeTraining) {
  REQUIRE_REAL_DATA();
  const CliResult r = train({"--limit", "64", "--epochs", "1", "--save", "no-dir/w.st"});
  expect_clean_failure(r, {"no-dir"});
  EXPECT_FALSE(contains(r.out, "Epoch 1/1")) << "the error came after training: " << r.describe();
}

TEST_F(Cli, ReportOntoADirectoryFailsBeforeTraining) {
  REQUIRE_REAL_DATA();
  fs::create_directories(work() / "a-dir");
  const CliResult r = train({"--limit", "64", "--epochs", "1", "--report", "a-dir"});
  expect_clean_failure(r, {"a-dir"});
  EXPECT_FALSE(contains(r.out, "Epoch 1/1")) << "the error came after training: " << r.describe();
  EXPECT_TRUE(fs::is_directory(work() / "a-dir"));
}

// ------------------------------------------------------------------------ bad weights

// Weights of mnist-cnn, trained once for the suite.
class CliWeights : public Cli {
 protected:
  static void SetUpTestSuite() {
    if (real_data_dir().empty()) return;
    dir_ = std::make_unique<ScratchDir>();
    const CliResult r = clitest::run_process(
        CNN_BINARY,
        {"train", "--model", "mnist-cnn", "--device", "cpu", "--data", real_data_dir(), "--limit",
         "256", "--epochs", "1", "--save", "w.safetensors"},
        dir_->path(), dir_->path());
    if (r.exited && r.exit_code == 0) weights_ = read_text(dir_->path() / "w.safetensors");
  }
  static void TearDownTestSuite() { dir_.reset(); }

  void SetUp() override {
    Cli::SetUp();
    REQUIRE_REAL_DATA();
    ASSERT_GT(weights_.size(), 30762u * 4) << "the suite's training run failed";
  }

  CliResult evaluate(const std::string& model, const std::string& weights_bytes) const {
    write_text(work() / "w.safetensors", weights_bytes);
    return run({"evaluate", "--model", model, "--device", "cpu", "--data", real_data_dir(),
                "--weights", "w.safetensors"});
  }

  static std::unique_ptr<ScratchDir> dir_;
  static std::string weights_;
};

std::unique_ptr<ScratchDir> CliWeights::dir_;
std::string CliWeights::weights_;

TEST_F(CliWeights, TheGoodFileEvaluates) {
  const CliResult r = evaluate("mnist-cnn", weights_);
  expect_success(r);
  EXPECT_FALSE(find_first(r.out, R"(test: 10000 images - loss (\d+\.\d{4}) - accuracy)").empty())
      << r.out;
}

TEST_F(CliWeights, EmptyFile) {
  expect_clean_failure(evaluate("mnist-cnn", ""), {"w.safetensors"});
}

TEST_F(CliWeights, FileTruncatedInTheHeader) {
  expect_clean_failure(evaluate("mnist-cnn", weights_.substr(0, 100)), {"w.safetensors"});
}

TEST_F(CliWeights, FileTruncatedInTheData) {
  expect_clean_failure(evaluate("mnist-cnn", weights_.substr(0, weights_.size() - 1000)),
                       {"w.safetensors"});
}

TEST_F(CliWeights, FileThatIsNotSafetensors) {
  expect_clean_failure(evaluate("mnist-cnn", std::string(64, 'x')), {"w.safetensors"});
  expect_clean_failure(evaluate("mnist-cnn", "{\"not\": \"a weights file\"}\n"), {"w.safetensors"});
}

TEST_F(CliWeights, HeaderThatIsNotJson) {
  std::string bad = weights_;
  bad[8] = '#';  // the header's opening brace
  expect_clean_failure(evaluate("mnist-cnn", bad), {"w.safetensors", "JSON"});
}

TEST_F(CliWeights, WeightsOfAnotherModel) {
  const CliResult r = evaluate("mnist-functional", weights_);
  expect_clean_failure(r, {"w.safetensors", "mnist-cnn", "mnist-functional"});
  EXPECT_EQ(r.exit_code, 1);
}

// The same, with the model name removed from the metadata: the tensor shapes still differ.
TEST_F(CliWeights, WeightsOfAnotherModelWithoutItsName) {
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<unsigned char>(weights_[static_cast<size_t>(i)]);
  ASSERT_LT(header_len, weights_.size());
  json header = json::parse(weights_.substr(8, header_len));
  header.erase("__metadata__");
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::string file;
  for (int i = 0; i < 8; ++i)
    file.push_back(static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff));
  file += text + weights_.substr(8 + header_len);

  expect_success(evaluate("mnist-cnn", file));  // still a good file for its own model
  const CliResult r = evaluate("mnist-functional", file);
  expect_clean_failure(r, {"w.safetensors", "shape"});
}

// ------------------------------------------------------------------------ training

TEST_F(Cli, TrainWritesAReportAndWeightsThatEvaluateToTheSameAccuracy) {
  REQUIRE_REAL_DATA();
  const CliResult r =
      train({"--model", "mnist-cnn", "--epochs", "2", "--limit", "2000", "--validation-split",
             "0.2", "--batch-size", "32", "--report", "r.json", "--save", "w.safetensors"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "Epoch 1/2")) << r.out;
  EXPECT_TRUE(contains(r.out, "Epoch 2/2")) << r.out;
  EXPECT_TRUE(contains(r.out, "device: cpu")) << r.out;
  EXPECT_TRUE(contains(r.out, "2000 training")) << r.out;

  const json j = read_report(work() / "r.json");
  ASSERT_TRUE(j.is_object());
  for (const char* key : {"model", "device", "epochs_run", "history", "test_loss", "test_accuracy",
                          "stopped_early", "best_epoch", "seed"})
    ASSERT_TRUE(j.contains(key)) << key << " missing from\n" << j.dump(2);
  EXPECT_EQ(j["model"], "mnist-cnn");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["epochs_run"], 2);
  EXPECT_EQ(j.value("epochs_requested", -1), 2);
  EXPECT_EQ(j.value("params", -1), 30762);
  EXPECT_EQ(j.value("train_images", -1), 2000);
  EXPECT_EQ(j.value("batch_size", -1), 32);
  EXPECT_EQ(j["stopped_early"], false);
  // The memory plan: at least the training batch, and less than a buffer each.
  const json& mem = j["activation_memory"];
  EXPECT_GE(mem.value("batch", 0), 32) << mem.dump();
  EXPECT_GT(mem.value("planned_bytes", int64_t(0)), 0) << mem.dump();
  EXPECT_LT(mem.value("planned_bytes", int64_t(0)), mem.value("unplanned_bytes", int64_t(0)))
      << mem.dump();
  EXPECT_GT(mem.value("buffers", 0), 0) << mem.dump();

  const json& h = j["history"];
  ASSERT_TRUE(h.is_array());
  ASSERT_EQ(h.size(), 2u);
  for (size_t e = 0; e < h.size(); ++e) {
    SCOPED_TRACE("epoch " + std::to_string(e + 1));
    for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"})
      ASSERT_TRUE(h[e].contains(key) && h[e][key].is_number()) << key << ": " << h[e].dump();
    EXPECT_EQ(h[e].value("epoch", -1), static_cast<int>(e) + 1);
    const double loss = h[e]["loss"], acc = h[e]["accuracy"];
    const double val_loss = h[e]["val_loss"], val_acc = h[e]["val_accuracy"];
    EXPECT_TRUE(std::isfinite(loss) && loss > 0.0) << loss;
    EXPECT_TRUE(std::isfinite(val_loss) && val_loss > 0.0) << val_loss;
    EXPECT_TRUE(acc >= 0.0 && acc <= 1.0) << acc;
    EXPECT_TRUE(val_acc >= 0.0 && val_acc <= 1.0) << val_acc;
    // Keras's split: the last 20% of the 2000 images validate, 1600 train.
    EXPECT_TRUE(is_fraction_of(acc, 1600)) << acc;
    EXPECT_TRUE(is_fraction_of(val_acc, 400)) << val_acc;
    EXPECT_GE(h[e]["seconds"].get<double>(), 0.0);
  }
  EXPECT_LT(h[1]["loss"].get<double>(), h[0]["loss"].get<double>()) << h.dump(2);

  const double test_loss = j["test_loss"], test_acc = j["test_accuracy"];
  EXPECT_TRUE(std::isfinite(test_loss) && test_loss > 0.0) << test_loss;
  EXPECT_GT(test_acc, 0.2) << "two epochs should do well above chance (0.1)";
  EXPECT_LE(test_acc, 1.0);
  EXPECT_TRUE(is_fraction_of(test_acc, 10000)) << test_acc;
  EXPECT_TRUE(contains(r.out, "accuracy " + fixed4(test_acc))) << r.out;

  ASSERT_TRUE(fs::is_regular_file(work() / "w.safetensors"));
  const CliResult ev = run({"evaluate", "--model", "mnist-cnn", "--weights", "w.safetensors",
                            "--data", real_data_dir(), "--device", "cpu"});
  expect_success(ev);
  const std::string line = find_first(ev.out, R"((test: .*accuracy.*))");
  ASSERT_FALSE(line.empty()) << ev.out;
  EXPECT_TRUE(contains(line, "10000 images")) << line;
  EXPECT_EQ(find_first(line, R"(accuracy (\d+\.\d+))"), fixed4(test_acc)) << line;
  EXPECT_EQ(find_first(line, R"(loss (\d+\.\d+))"), fixed4(test_loss)) << line;
}

// The best epoch is the first to reach the best value of the monitored metric, among the
// epochs run; with patience 0 the run stops at the first epoch that does not improve.
void expect_consistent_early_stopping(const json& j, int requested, int patience) {
  const int run = j["epochs_run"];
  const int best = j["best_epoch"];
  const bool stopped = j["stopped_early"];
  const json& h = j["history"];
  ASSERT_EQ(static_cast<int>(h.size()), run) << j.dump(2);
  ASSERT_GE(run, 1);
  ASSERT_LE(run, requested);
  ASSERT_GE(best, 1) << j.dump(2);
  ASSERT_LE(best, run) << j.dump(2);

  std::vector<double> acc;
  for (const json& e : h) acc.push_back(e["val_accuracy"].get<double>());
  const double top = *std::max_element(acc.begin(), acc.end());
  EXPECT_EQ(acc[static_cast<size_t>(best - 1)], top) << j.dump(2);
  for (int e = 1; e < best; ++e) EXPECT_LT(acc[static_cast<size_t>(e - 1)], top) << j.dump(2);

  if (stopped) {
    EXPECT_LT(run, requested + 1);
    // Stops once `patience` epochs (at least one) passed without improvement.
    EXPECT_EQ(run - best, std::max(patience, 1)) << j.dump(2);
  } else {
    EXPECT_EQ(run, requested) << j.dump(2);
    EXPECT_LT(run - best, std::max(patience, 1)) << j.dump(2);
  }
}

TEST_F(Cli, EarlyStoppingReportAgreesWithItsHistoryAndRestoresTheBestWeights) {
  REQUIRE_REAL_DATA();
  const int requested = 5;
  const CliResult r =
      train({"--model", "mnist-cnn", "--epochs", std::to_string(requested), "--limit", "600",
             "--validation-split", "0.25", "--patience", "0", "--monitor", "val_accuracy",
             "--report", "es.json", "--save", "es.st"});
  expect_success(r);
  const json j = read_report(work() / "es.json");
  ASSERT_TRUE(j.is_object());
  expect_consistent_early_stopping(j, requested, 0);
  const int best = j["best_epoch"];
  const int run_epochs = j["epochs_run"];
  EXPECT_EQ(contains(r.out, "early stopping after epoch " + std::to_string(run_epochs)),
            j["stopped_early"].get<bool>())
      << r.out;

  // The saved weights are the best epoch's: the same as a run of exactly that many epochs.
  const CliResult ref =
      train({"--model", "mnist-cnn", "--epochs", std::to_string(best), "--limit", "600",
             "--validation-split", "0.25", "--report", "ref.json", "--save", "ref.st"});
  expect_success(ref);
  const std::string saved = read_text(work() / "es.st");
  ASSERT_FALSE(saved.empty());
  EXPECT_TRUE(saved == read_text(work() / "ref.st"))
      << "the early-stopped run did not keep the weights of epoch " << best;
  const json rj = read_report(work() / "ref.json");
  EXPECT_EQ(rj["test_accuracy"], j["test_accuracy"]);
}

// With a learning rate too small to move any weight, val_accuracy never improves after
// epoch 1, so the run must stop after 1 + max(patience, 1) epochs.
class CliEarlyStop : public Cli, public ::testing::WithParamInterface<int> {};

TEST_P(CliEarlyStop, StopsWhenTheMonitoredMetricStallsForPatienceEpochs) {
  REQUIRE_REAL_DATA();
  const int patience = GetParam();
  const CliResult r =
      train({"--model", "mnist-cnn", "--epochs", "6", "--limit", "400", "--validation-split",
             "0.25", "--optimizer", "sgd", "--lr", "1e-12", "--patience", std::to_string(patience),
             "--monitor", "val_accuracy", "--report", "r.json"});
  expect_success(r);
  const json j = read_report(work() / "r.json");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["stopped_early"], true) << j.dump(2);
  EXPECT_EQ(j["best_epoch"], 1) << j.dump(2);
  EXPECT_EQ(j["epochs_run"], 1 + std::max(patience, 1)) << j.dump(2);
  EXPECT_EQ(j["epochs_requested"], 6);
  expect_consistent_early_stopping(j, 6, patience);
  EXPECT_TRUE(contains(r.out, "early stopping after epoch")) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Patience, CliEarlyStop, ::testing::Values(0, 2));

// ------------------------------------------------------------------------ seeds

TEST_F(Cli, SameSeedGivesIdenticalWeightsAndADifferentSeedDoesNot) {
  // Also on another number of threads: the CPU backend's split never changes the bits.
  REQUIRE_REAL_DATA();
  auto run_seed = [&](const std::string& seed, const std::string& tag, const std::string& threads) {
    const CliResult r = train({"--model", "mnist-cnn", "--epochs", "2", "--limit", "500",
                               "--validation-split", "0.2", "--seed", seed, "--threads", threads,
                               "--report", tag + ".json", "--save", tag + ".st"});
    expect_success(r);
    // The child inherits this process's environment, so OpenBLAS picks the same kernels.
    EXPECT_TRUE(contains(r.out, "device: cpu, " + threads +
                                    (threads == "1" ? " thread, " : " threads, ") +
                                    cnn::cpu_gemm_description()))
        << r.out;
  };
  run_seed("7", "a", "1");
  run_seed("7", "b", "3");
  run_seed("8", "c", "1");
  const std::string a = read_text(work() / "a.st"), b = read_text(work() / "b.st"),
                    c = read_text(work() / "c.st");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "seed 7 twice gave different weights files";
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c) << "seeds 7 and 8 gave the same weights";

  const json ja = read_report(work() / "a.json"), jb = read_report(work() / "b.json"),
             jc = read_report(work() / "c.json");
  ASSERT_TRUE(ja.is_object() && jb.is_object() && jc.is_object());
  EXPECT_EQ(ja["seed"], 7);
  EXPECT_EQ(jc["seed"], 8);
  EXPECT_EQ(ja["cpu_threads"], 1);
  EXPECT_EQ(jb["cpu_threads"], 3);
  EXPECT_EQ(ja["cpu_gemm"], cnn::cpu_gemm_description());
  ASSERT_EQ(ja["history"].size(), 2u);
  ASSERT_EQ(jb["history"].size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"})
      EXPECT_EQ(ja["history"][e][key], jb["history"][e][key]) << key << " of epoch " << e + 1;
  }
  EXPECT_EQ(ja["test_loss"], jb["test_loss"]);
  EXPECT_NE(ja["history"][0]["loss"], jc["history"][0]["loss"]);
}

// ------------------------------------------------------------------------ devices, help

TEST_F(Cli, DevicesReportsWhetherAGpuIsUsable) {
  const CliResult r = run({"devices"});
  expect_success(r);
  EXPECT_TRUE(r.err.empty()) << r.describe();
  EXPECT_TRUE(contains(r.out, "built with CUDA: yes") || contains(r.out, "built with CUDA: no"))
      << r.out;
  // A CUDA build says which cuDNN it loaded, GPU or not.
  if (contains(r.out, "built with CUDA: yes")) {
    EXPECT_TRUE(
        std::regex_search(r.out, std::regex(R"(\nloaded: cuDNN 9\.\d+\.\d+ \(built with 9\.)")))
        << r.out;
  }
  const bool none = contains(r.out, "no usable GPU: ");
  if (none) {
    EXPECT_TRUE(contains(r.out, "--device auto runs on the CPU")) << r.out;
  } else {
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"((^|\n)cuda:0  \S)"))) << r.out;
  }
}

TEST_F(Cli, HelpListsTheCommands) {
  const CliResult r = run({"--help"});
  expect_success(r);
  for (const char* cmd : {"summary", "train", "evaluate", "devices"})
    EXPECT_TRUE(contains(r.out, cmd)) << r.out;
  const CliResult t = run({"train", "--help"});
  expect_success(t);
  for (const char* flag :
       {"--model", "--data", "--device", "--batch-size", "--seed", "--epochs", "--optimizer",
        "--validation-split", "--patience", "--monitor", "--report", "--save"})
    EXPECT_TRUE(contains(t.out, flag)) << flag << "\n" << t.out;
}

}  // namespace
}  // namespace cnn
