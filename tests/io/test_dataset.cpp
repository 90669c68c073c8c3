// Datasets: pairs of IDX files into tensors, dataset folders, where the data is found,
// and (when present) the real Fashion-MNIST and MNIST files.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/dataset.h"
#include "io/io_test_util.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

using iotest::Bytes;
using iotest::Contains;
using iotest::error_message;
using iotest::images_idx;
using iotest::labels_idx;
using iotest::pattern_bytes;
using iotest::ScopedEnv;
using iotest::ScratchDir;
using iotest::write_gz;
using iotest::write_raw;

// Writes the four standard files of a tiny dataset (train: n_train, test: n_test items
// of 28x28) into dir, gzip-compressed or raw.
void write_dataset(const fs::path& dir, int n_train, int n_test, bool gz = true) {
  fs::create_directories(dir);
  auto put = [&](const char* name, const Bytes& bytes) {
    const fs::path p = dir / (std::string(name) + (gz ? ".gz" : ""));
    gz ? write_gz(p.string(), bytes) : write_raw(p.string(), bytes);
  };
  const auto ntr = static_cast<uint32_t>(n_train);
  const auto nte = static_cast<uint32_t>(n_test);
  put(kTrainImagesFile, images_idx(ntr, 28, 28, pattern_bytes(ntr * 784u, 1)));
  put(kTrainLabelsFile, labels_idx(pattern_bytes(ntr, 2, 10)));
  put(kTestImagesFile, images_idx(nte, 28, 28, pattern_bytes(nte * 784u, 3)));
  put(kTestLabelsFile, labels_idx(pattern_bytes(nte, 4, 10)));
}

std::string norm(const std::string& p) { return fs::path(p).lexically_normal().string(); }

TEST(Dataset, LoadPairScalesPixelsAndKeepsLabels) {
  ScratchDir dir;
  const Bytes pixels = {0, 51, 102, 255, 1, 128, 200, 254};  // 2 images of 2x2
  write_raw(dir.file("img"), images_idx(2, 2, 2, pixels));
  write_gz(dir.file("lab"), labels_idx(Bytes{9, 0}));
  const Dataset ds = load_idx_pair(dir.file("img"), dir.file("lab"));
  EXPECT_EQ(ds.images.shape(), (Shape{2, 1, 2, 2}));
  EXPECT_EQ(ds.labels.shape(), (Shape{2}));
  EXPECT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.classes, 10);
  EXPECT_EQ(ds.source, dir.file("img"));
  const float* px = ds.images.host();
  for (size_t i = 0; i < pixels.size(); ++i) {
    EXPECT_FLOAT_EQ(px[i], static_cast<float>(pixels[i]) / 255.0f) << i;
  }
  EXPECT_EQ(px[0], 0.0f);
  EXPECT_EQ(px[3], 1.0f);
  EXPECT_EQ(ds.labels.host()[0], 9.0f);
  EXPECT_EQ(ds.labels.host()[1], 0.0f);
}

TEST(Dataset, MismatchedCountsRejected) {
  ScratchDir dir;
  write_raw(dir.file("img"), images_idx(3, 2, 2, pattern_bytes(12)));
  write_raw(dir.file("lab"), labels_idx(Bytes{1, 2}));
  const std::string msg =
      error_message<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); });
  EXPECT_TRUE(Contains(msg, "counts differ"));
  EXPECT_TRUE(Contains(msg, "holds 3 images"));
  EXPECT_TRUE(Contains(msg, "holds 2 labels"));
}

TEST(Dataset, LabelOutOfRangeRejected) {
  ScratchDir dir;
  write_raw(dir.file("img"), images_idx(3, 2, 2, pattern_bytes(12)));
  write_raw(dir.file("lab"), labels_idx(Bytes{1, 10, 2}));
  const std::string msg =
      error_message<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); });
  EXPECT_TRUE(Contains(msg, dir.file("lab")));
  EXPECT_TRUE(Contains(msg, "label 10 of item 1 is out of range"));
}

TEST(Dataset, MalformedFileInPairNamesTheFile) {
  ScratchDir dir;
  write_raw(dir.file("img"), images_idx(3, 2, 2, pattern_bytes(11)));  // one byte short
  write_raw(dir.file("lab"), labels_idx(Bytes{1, 2, 3}));
  const std::string msg =
      error_message<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); });
  EXPECT_TRUE(Contains(msg, dir.file("img")));
  EXPECT_TRUE(Contains(msg, "truncated"));
}

TEST(Dataset, LoadDirGzipRawAndMixed) {
  ScratchDir dir;
  write_dataset(dir.path() / "gz", 12, 5, true);
  write_dataset(dir.path() / "raw", 12, 5, false);
  write_dataset(dir.path() / "mixed", 12, 5, true);
  fs::remove(dir.path() / "mixed" / (std::string(kTestLabelsFile) + ".gz"));
  fs::copy_file(dir.path() / "raw" / kTestLabelsFile, dir.path() / "mixed" / kTestLabelsFile);

  const DatasetSplits gz = load_dataset_dir((dir.path() / "gz").string());
  EXPECT_EQ(gz.train.images.shape(), (Shape{12, 1, 28, 28}));
  EXPECT_EQ(gz.test.images.shape(), (Shape{5, 1, 28, 28}));
  EXPECT_EQ(gz.train.labels.shape(), (Shape{12}));
  EXPECT_TRUE(Contains(gz.train.source, "train"));
  EXPECT_TRUE(Contains(gz.test.source, "test"));
  for (const char* sub : {"raw", "mixed"}) {
    const DatasetSplits other = load_dataset_dir((dir.path() / sub).string());
    for (int split = 0; split < 2; ++split) {
      const Dataset& a = split ? gz.test : gz.train;
      const Dataset& b = split ? other.test : other.train;
      ASSERT_EQ(a.images.shape(), b.images.shape());
      EXPECT_TRUE(std::equal(a.images.host(), a.images.host() + a.images.numel(), b.images.host()))
          << sub;
      EXPECT_TRUE(std::equal(a.labels.host(), a.labels.host() + a.labels.numel(), b.labels.host()))
          << sub;
    }
  }
}

TEST(Dataset, LoadDirListsMissingFiles) {
  ScratchDir dir;
  write_dataset(dir.path(), 4, 4, true);
  fs::remove(dir.path() / (std::string(kTrainLabelsFile) + ".gz"));
  fs::remove(dir.path() / (std::string(kTestImagesFile) + ".gz"));
  EXPECT_FALSE(dataset_dir_complete(dir.path().string()));
  const std::string msg = error_message<DataError>([&] { load_dataset_dir(dir.path().string()); });
  EXPECT_TRUE(Contains(msg, "missing train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz)"));
  EXPECT_FALSE(Contains(msg, "train-images"));
  EXPECT_TRUE(Contains(msg, "download_data.sh"));

  const std::string none =
      error_message<DataError>([&] { load_dataset_dir(dir.file("no-such-dir")); });
  EXPECT_TRUE(Contains(none, "does not exist"));
}

TEST(Dataset, TestOnlyLeavesTheTrainingSplitUnreadAndEmpty) {
  ScratchDir dir;
  write_dataset(dir.path(), 9, 4, true);
  const DatasetSplits both = load_dataset_dir(dir.path().string());
  // Without the training files at all: only the test pair is looked for.
  fs::remove(dir.path() / (std::string(kTrainImagesFile) + ".gz"));
  fs::remove(dir.path() / (std::string(kTrainLabelsFile) + ".gz"));
  const DatasetSplits test = load_dataset_dir(dir.path().string(), DatasetParts::TestOnly);
  EXPECT_EQ(test.train.size(), 0);
  ASSERT_EQ(test.test.images.shape(), both.test.images.shape());
  EXPECT_TRUE(std::equal(test.test.images.host(),
                         test.test.images.host() + test.test.images.numel(),
                         both.test.images.host()));
  EXPECT_TRUE(std::equal(test.test.labels.host(),
                         test.test.labels.host() + test.test.labels.numel(),
                         both.test.labels.host()));
  EXPECT_TRUE(Contains(test.test.source, "test"));
  fs::remove(dir.path() / (std::string(kTestLabelsFile) + ".gz"));
  const std::string msg = error_message<DataError>(
      [&] { load_dataset_dir(dir.path().string(), DatasetParts::TestOnly); });
  EXPECT_TRUE(Contains(msg, "missing t10k-labels-idx1-ubyte(.gz)"));
  EXPECT_FALSE(Contains(msg, "train-"));
}

TEST(Dataset, TakeFirstCopies) {
  ScratchDir dir;
  write_dataset(dir.path(), 10, 2, false);
  const DatasetSplits splits = load_dataset_dir(dir.path().string());
  const Dataset& full = splits.train;
  const Dataset head = take_first(full, 3);
  EXPECT_EQ(head.images.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(head.labels.shape(), (Shape{3}));
  EXPECT_EQ(head.classes, full.classes);
  EXPECT_EQ(head.source, full.source);
  EXPECT_NE(head.images.storage(), full.images.storage());
  EXPECT_TRUE(
      std::equal(head.images.host(), head.images.host() + head.images.numel(), full.images.host()));
  EXPECT_TRUE(std::equal(head.labels.host(), head.labels.host() + 3, full.labels.host()));
  // Writing to the copy leaves the original alone.
  const float before = full.images.host()[0];
  head.images.host()[0] = 0.5f + before;
  EXPECT_EQ(full.images.host()[0], before);

  EXPECT_EQ(take_first(full, 1000).size(), 10);  // clamped
  EXPECT_TRUE(Contains(error_message<ConfigError>([&] { take_first(full, 0); }), "positive"));
  EXPECT_TRUE(Contains(error_message<ConfigError>([&] { take_first(full, -5); }), "positive"));
}

// --- where the data is found -------------------------------------------------------

TEST(DataDir, FlagWinsAndMustExist) {
  ScratchDir dir;
  write_dataset(dir.path() / "fashion-mnist", 2, 2);
  ScopedEnv env("CNN_DATA_DIR", dir.path().string());
  // An existing flag is used even where the environment has data.
  const std::string flag = dir.file("elsewhere");
  fs::create_directories(flag);
  EXPECT_EQ(resolve_data_dir(flag, "fashion-mnist"), flag);
  // The flag may also name a parent of the dataset folder.
  EXPECT_EQ(norm(resolve_data_dir(dir.path().string(), "fashion-mnist")),
            norm(dir.file("fashion-mnist")));
  // A missing flag directory is a configuration error, not a fallback.
  const std::string msg = error_message<ConfigError>(
      [&] { resolve_data_dir(dir.file("does-not-exist"), "fashion-mnist"); });
  EXPECT_TRUE(Contains(msg, dir.file("does-not-exist")));
  EXPECT_TRUE(Contains(msg, "does not exist"));
}

TEST(DataDir, EnvNamesTheDatasetFolder) {
  ScratchDir dir;
  write_dataset(dir.path() / "fm", 2, 2);
  ScopedEnv env("CNN_DATA_DIR", dir.file("fm"));
  EXPECT_EQ(norm(resolve_data_dir("", "fashion-mnist")), norm(dir.file("fm")));
}

TEST(DataDir, EnvNamesAParentFolder) {
  ScratchDir dir;
  write_dataset(dir.path() / "mnist", 2, 2);
  write_dataset(dir.path() / "fashion-mnist", 2, 2);
  ScopedEnv env("CNN_DATA_DIR", dir.path().string());
  EXPECT_EQ(norm(resolve_data_dir("", "mnist")), norm(dir.file("mnist")));
  EXPECT_EQ(norm(resolve_data_dir("", "fashion-mnist")), norm(dir.file("fashion-mnist")));
}

TEST(DataDir, IncompleteEnvFallsThroughToProjectFolders) {
  ScratchDir dir;
  write_dataset(dir.path() / "fashion-mnist", 2, 2);
  fs::remove(dir.path() / "fashion-mnist" / (std::string(kTestLabelsFile) + ".gz"));
  ScopedEnv env("CNN_DATA_DIR", dir.path().string());
  const std::string shared = std::string(CNN_TEST_SHARED_DATA) + "/fashion-mnist";
  const std::string project = std::string(CNN_SOURCE_DIR) + "/data/fashion-mnist";
  if (!dataset_dir_complete(shared) && !dataset_dir_complete(project)) {
    GTEST_SKIP() << "no Fashion-MNIST in " << shared << " or " << project;
  }
  const std::string found = resolve_data_dir("", "fashion-mnist");
  EXPECT_TRUE(dataset_dir_complete(found));
  // The project's own data folder comes before the shared one.
  EXPECT_EQ(norm(found), norm(dataset_dir_complete(project) ? project : shared));
}

TEST(DataDir, NothingFoundListsEveryPlace) {
  ScratchDir dir;
  const std::string name = "no-such-dataset-for-tests";
  {
    ScopedEnv env("CNN_DATA_DIR", dir.path().string());
    const std::string msg = error_message<ConfigError>([&] { resolve_data_dir("", name); });
    EXPECT_TRUE(Contains(msg, "cannot find the " + name + " dataset"));
    EXPECT_TRUE(Contains(msg, norm(dir.path().string()) + " ($CNN_DATA_DIR)"));
    EXPECT_TRUE(Contains(msg, norm(dir.file(name)) + " ($CNN_DATA_DIR/" + name + ")"));
    EXPECT_TRUE(Contains(msg, norm(std::string(CNN_SOURCE_DIR) + "/data/" + name)));
    EXPECT_TRUE(Contains(msg, norm(std::string(CNN_TEST_SHARED_DATA) + "/" + name)));
    EXPECT_TRUE(Contains(msg, "scripts/download_data.sh"));
  }
  {
    ScopedEnv env("CNN_DATA_DIR", std::nullopt);
    const std::string msg = error_message<ConfigError>([&] { resolve_data_dir("", name); });
    EXPECT_TRUE(Contains(msg, "CNN_DATA_DIR is not set"));
    EXPECT_TRUE(Contains(msg, norm(std::string(CNN_SOURCE_DIR) + "/data/" + name)));
  }
}

TEST(DataDir, EnvIsRestored) {
  // ScopedEnv itself: the tests above must not leak CNN_DATA_DIR into later ones.
  const char* before = std::getenv("CNN_DATA_DIR");
  const std::string saved = before ? before : "";
  {
    ScopedEnv env("CNN_DATA_DIR", std::string("/tmp/somewhere"));
    EXPECT_STREQ(std::getenv("CNN_DATA_DIR"), "/tmp/somewhere");
  }
  const char* after = std::getenv("CNN_DATA_DIR");
  EXPECT_EQ(after != nullptr, before != nullptr);
  if (after) {
    EXPECT_EQ(saved, after);
  }
}

// --- the real data -----------------------------------------------------------------

struct RealStats {
  double pixel_sum = 0;
  float min = 1, max = 0;
  std::array<int64_t, 10> per_class{};
};

RealStats stats(const Dataset& ds) {
  RealStats s;
  const float* px = ds.images.host();
  for (int64_t i = 0; i < ds.images.numel(); ++i) {
    s.pixel_sum += static_cast<double>(px[i]);
    s.min = std::min(s.min, px[i]);
    s.max = std::max(s.max, px[i]);
  }
  const float* lb = ds.labels.host();
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto c = static_cast<size_t>(lb[i]);
    EXPECT_EQ(static_cast<float>(c), lb[i]);
    if (c < 10) ++s.per_class[c];
  }
  return s;
}

TEST(RealData, FashionMnistLoadsFully) {
  const std::string dir = std::string(CNN_TEST_SHARED_DATA) + "/fashion-mnist";
  if (!dataset_dir_complete(dir)) GTEST_SKIP() << "Fashion-MNIST not found in " << dir;
  const DatasetSplits d = load_dataset_dir(dir);
  EXPECT_EQ(d.train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(d.train.labels.shape(), (Shape{60000}));
  EXPECT_EQ(d.test.images.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(d.test.labels.shape(), (Shape{10000}));
  EXPECT_EQ(d.train.classes, 10);

  const RealStats train = stats(d.train);
  EXPECT_EQ(train.min, 0.0f);
  EXPECT_EQ(train.max, 1.0f);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(train.per_class[static_cast<size_t>(c)], 6000) << c;
  // Sum of all pixel bytes of the official file, divided by 255.
  EXPECT_NEAR(train.pixel_sum, 3431114169.0 / 255.0, 1.0);
  const RealStats test = stats(d.test);
  EXPECT_EQ(test.min, 0.0f);
  EXPECT_EQ(test.max, 1.0f);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(test.per_class[static_cast<size_t>(c)], 1000) << c;
  EXPECT_NEAR(test.pixel_sum, 573469082.0 / 255.0, 1.0);

  // The first training item is an ankle boot (9), then two T-shirts (0).
  EXPECT_EQ(d.train.labels.host()[0], 9.0f);
  EXPECT_EQ(d.train.labels.host()[1], 0.0f);
  EXPECT_EQ(d.train.labels.host()[2], 0.0f);
  EXPECT_EQ(d.test.labels.host()[0], 9.0f);

  const Dataset head = take_first(d.train, 100);
  EXPECT_EQ(head.images.shape(), (Shape{100, 1, 28, 28}));
}

TEST(RealData, MnistLoadsFully) {
  const std::string dir = std::string(CNN_TEST_SHARED_DATA) + "/mnist";
  if (!dataset_dir_complete(dir)) GTEST_SKIP() << "MNIST not found in " << dir;
  const DatasetSplits d = load_dataset_dir(dir);
  EXPECT_EQ(d.train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(d.test.images.shape(), (Shape{10000, 1, 28, 28}));
  const RealStats train = stats(d.train);
  const std::array<int64_t, 10> train_counts = {5923, 6742, 5958, 6131, 5842,
                                                5421, 5918, 6265, 5851, 5949};
  EXPECT_EQ(train.per_class, train_counts);
  EXPECT_NEAR(train.pixel_sum, 1567298545.0 / 255.0, 1.0);
  EXPECT_EQ(d.train.labels.host()[0], 5.0f);
  EXPECT_EQ(d.test.labels.host()[0], 7.0f);
}

}  // namespace
}  // namespace cnn
