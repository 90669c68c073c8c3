// The fixture of the `cnn train` command-line tests (test_cli_train.cpp,
// test_cli_train_flags.cpp): a small synthetic dataset written once per suite as IDX
// files (400 training and 100 test images that mnist-cnn learns within an epoch), a
// scratch working directory per test, and checks of how a run ended and what it wrote.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"

namespace cnn::clitest {

namespace fs = std::filesystem;
using nlohmann::json;

class CliTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = std::make_unique<ScratchDir>();
    write_split(data_->path(), "train", 400, 1);
    write_split(data_->path(), "t10k", 100, 2);
  }
  static void TearDownTestSuite() { data_.reset(); }
  void SetUp() override { fs::create_directories(work()); }

  fs::path work() const { return scratch_.path() / "work"; }
  fs::path in_work(const std::string& name) const { return work() / name; }

  CliResult run(const std::vector<std::string>& args) const {
    return clitest::run_process(CNN_BINARY, args, work(), scratch_.path());
  }
  // A training run on the small data and the CPU, with the given flags.
  std::vector<std::string> train_args(const std::vector<std::string>& flags) const {
    std::vector<std::string> args = {"train",   "--device", "cpu", "--data", data_->path().string(),
                                     "--model", "mnist-cnn"};
    args.insert(args.end(), flags.begin(), flags.end());
    return args;
  }
  CliResult train(const std::vector<std::string>& flags) const { return run(train_args(flags)); }

  inline static std::unique_ptr<ScratchDir> data_;
  ScratchDir scratch_;
};

inline void expect_success(const CliResult& r) {
  ASSERT_FALSE(r.timed_out) << r.describe();
  ASSERT_TRUE(r.exited) << r.describe();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

// The app's own error: exit 1, one line "cnn: error: ..." holding every part.
inline void expect_error(const CliResult& r, const std::vector<std::string>& parts) {
  ASSERT_TRUE(r.exited) << r.describe();
  ASSERT_EQ(r.exit_code, 1) << r.describe();
  const std::vector<std::string> lines = split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.describe();
  EXPECT_EQ(lines[0].rfind("cnn: error: ", 0), 0u) << r.describe();
  for (const std::string& p : parts)
    EXPECT_TRUE(contains(r.err, p)) << "stderr lacks '" << p << "': " << r.describe();
}

inline json read_json(const fs::path& p) {
  const std::string text = read_text(p);
  json j = json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << p << ":\n" << text;
  return j;
}

// The CSV as rows of cells. Its lines end in \r\n, as Keras's CSVLogger writes them.
inline std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  for (std::string line : split_lines(read_text(p))) {
    EXPECT_TRUE(!line.empty() && line.back() == '\r') << p << ": a line does not end in \\r\\n";
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cells;
    size_t start = 0;
    for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
      cells.push_back(line.substr(start, comma - start));
    cells.push_back(line.substr(start));
    rows.push_back(cells);
  }
  return rows;
}

}  // namespace cnn::clitest
