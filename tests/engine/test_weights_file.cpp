// Saved weights: round trips, atomic replacement, and refusal of anything damaged.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/io/weights_file.h"
#include "support/engine_fixtures.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

class WeightsFile : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void write(const std::string& p, const std::string& s) {
    std::ofstream(p, std::ios::binary) << s;
  }
  std::string load_error(const std::string& file) {
    Model m = testing::small_stochastic_model();
    Parameters p(m, be_);
    try {
      load_weights(file, m, p);
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  }

  test::ScratchDir dir_{"cnn_weights"};
  CpuBackend be_;
};

TEST_F(WeightsFile, RoundTripRestoresEveryValueAndState) {
  Model m = testing::small_stochastic_model();
  Parameters a(m, be_), b(m, be_);
  a.initialize(1);
  b.initialize(2);
  for (const int64_t i : testing::flat_indices(a, /*trainable=*/false))
    a.state().host()[i] = 0.5f + static_cast<float>(i);
  save_weights(path("w.safetensors"), m, a);
  load_weights(path("w.safetensors"), m, b);
  const auto sa = a.snapshot(), sb = b.snapshot();
  EXPECT_EQ(sa.values, sb.values);
  EXPECT_EQ(sa.state, sb.state);
  // The format: 8-byte little-endian header length, then JSON with dtype and offsets.
  const std::string bytes = read(path("w.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find("\"conv2d/kernel\""), std::string::npos);
  EXPECT_NE(header.find("\"F32\""), std::string::npos);
  EXPECT_NE(header.find("\"batch_normalization/moving_variance\""), std::string::npos);
  EXPECT_EQ(bytes.size(), 8 + n + 4 * static_cast<size_t>(m.count_params()));
  EXPECT_FALSE(fs::exists(path("w.safetensors") + ".tmp"));
}

TEST_F(WeightsFile, TruncatedCorruptAndForeignFilesAreRefused) {
  Model m = testing::small_stochastic_model();
  Parameters p(m, be_);
  p.initialize(1);
  save_weights(path("good"), m, p);
  const std::string good = read(path("good"));

  write(path("empty"), "");
  EXPECT_NE(load_error(path("empty")).find("too short"), std::string::npos);
  write(path("cut"), good.substr(0, good.size() - 100));
  EXPECT_NE(load_error(path("cut")).find("offsets"), std::string::npos);
  write(path("cut_header"), good.substr(0, 40));
  EXPECT_NE(load_error(path("cut_header")).find("header length"), std::string::npos);
  std::string garbled = good;
  garbled[9] = '#';
  write(path("garbled"), garbled);
  EXPECT_NE(load_error(path("garbled")).find("JSON"), std::string::npos);
  EXPECT_NE(load_error(path("missing")).find("cannot open"), std::string::npos);

  Model other = build_model("mnist-cnn");
  Parameters po(other, be_);
  save_weights(path("other"), other, po);
  const std::string msg = load_error(path("other"));
  EXPECT_NE(msg.find("mnist-cnn"), std::string::npos) << msg;
}

TEST_F(WeightsFile, AFailedLoadLeavesTheParametersUntouched) {
  Model m = testing::small_stochastic_model();
  Parameters p(m, be_);
  p.initialize(1);
  save_weights(path("good"), m, p);
  std::string bytes = read(path("good"));
  // Damage the last tensor's offsets so the failure is found after earlier tensors passed.
  const size_t pos = bytes.rfind("data_offsets");
  bytes.replace(bytes.find('[', pos) + 1, 1, "9");
  write(path("late_damage"), bytes);
  Parameters q(m, be_);
  q.initialize(5);
  const auto before = q.snapshot();
  EXPECT_THROW(load_weights(path("late_damage"), m, q), DataError);
  EXPECT_EQ(q.snapshot().values, before.values);
}

TEST_F(WeightsFile, SavingReplacesAnOldFileWhole) {
  Model m = testing::small_stochastic_model();
  Parameters p(m, be_);
  p.initialize(1);
  write(path("w"), "old contents");
  save_weights(path("w"), m, p);
  EXPECT_EQ(load_error(path("w")), "");
  EXPECT_THROW(save_weights((dir_.path() / "no" / "such" / "dir" / "w").string(), m, p), Error);
}

}  // namespace
}  // namespace cnn
