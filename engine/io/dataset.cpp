#include "engine/io/dataset.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <system_error>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/idx.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// <dir>/<name>.gz if present, else <dir>/<name> if present, else empty.
std::string find_idx_file(const fs::path& dir, const std::string& name) {
  const fs::path gz = dir / (name + ".gz");
  if (is_file(gz)) return gz.string();
  const fs::path raw = dir / name;
  if (is_file(raw)) return raw.string();
  return {};
}

const std::array<const char*, 4>& standard_files() {
  static const std::array<const char*, 4> files = {kTrainImagesFile, kTrainLabelsFile,
                                                   kTestImagesFile, kTestLabelsFile};
  return files;
}

std::string display(const fs::path& p) { return p.lexically_normal().string(); }

}  // namespace

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  const IdxArray images = read_idx_images(images_path);
  const IdxArray labels = read_idx_labels(labels_path);
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    throw DataError(
        fmt::format("image and label counts differ: '{}' holds {} images, '{}' holds {} labels",
                    images_path, n, labels_path, labels.dims[0]));
  }
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= kDatasetClasses) {
      throw DataError(fmt::format(
          "IDX file '{}': label {} of item {} is out of range; labels must be class ids 0 to {}",
          labels_path, static_cast<unsigned>(labels.data[i]), i, kDatasetClasses - 1));
    }
  }

  Dataset ds;
  ds.classes = kDatasetClasses;
  ds.source = images_path;
  ds.images = Tensor::empty_host(Shape{n, 1, images.dims[1], images.dims[2]});
  ds.labels = Tensor::empty_host(Shape{n});

  // byte / 255, through a table (as numpy's float64 division then a cast to float32).
  std::array<float, 256> scale{};
  for (size_t v = 0; v < scale.size(); ++v) {
    scale[v] = static_cast<float>(static_cast<double>(v) / 255.0);
  }
  float* px = ds.images.host();
  const uint8_t* src = images.data.data();
  const size_t count = images.data.size();
  for (size_t i = 0; i < count; ++i) px[i] = scale[src[i]];

  float* lb = ds.labels.host();
  for (size_t i = 0; i < labels.data.size(); ++i) lb[i] = static_cast<float>(labels.data[i]);
  return ds;
}

bool dataset_dir_complete(const std::string& dir) {
  for (const char* name : standard_files()) {
    if (find_idx_file(dir, name).empty()) return false;
  }
  return true;
}

DatasetSplits load_dataset_dir(const std::string& dir, DatasetParts parts) {
  if (!is_dir(dir)) {
    throw DataError(fmt::format("dataset directory '{}' does not exist", dir));
  }
  const bool train = parts == DatasetParts::Both;
  std::array<std::string, 4> paths;
  std::string missing;
  for (size_t i = train ? 0 : 2; i < paths.size(); ++i) {
    paths[i] = find_idx_file(dir, standard_files()[i]);
    if (paths[i].empty()) {
      if (!missing.empty()) missing += ", ";
      missing += fmt::format("{}(.gz)", standard_files()[i]);
    }
  }
  if (!missing.empty()) {
    throw DataError(fmt::format(
        "dataset directory '{}' is incomplete: missing {} (run scripts/download_data.sh to "
        "download the data)",
        dir, missing));
  }
  const auto load_split = [&](size_t images, const char* split) {
    Dataset d = load_idx_pair(paths[images], paths[images + 1]);
    d.source = fmt::format("{} ({})", dir, split);
    return d;
  };
  DatasetSplits splits;
  if (!train) {
    splits.test = load_split(2, "test");
    return splits;
  }
  // The test split decompresses on a second thread while the train split loads here.
  std::future<Dataset> test = std::async(std::launch::async, load_split, 2, "test");
  splits.train = load_split(0, "train");
  splits.test = test.get();
  return splits;
}

std::string resolve_data_dir(const std::string& flag, const std::string& dataset_name) {
  if (!flag.empty()) {
    if (!is_dir(flag)) {
      throw ConfigError(fmt::format("data directory '{}' (given by flag) does not exist", flag));
    }
    // Like $CNN_DATA_DIR, the flag may name the dataset folder or a parent of it.
    if (!dataset_dir_complete(flag) && !dataset_name.empty() &&
        dataset_dir_complete((fs::path(flag) / dataset_name).string())) {
      return (fs::path(flag) / dataset_name).string();
    }
    return flag;
  }

  std::vector<std::string> looked;
  auto try_dir = [&looked](const fs::path& dir, const std::string& why) -> bool {
    looked.push_back(fmt::format("{} ({})", display(dir), why));
    return dataset_dir_complete(dir.string());
  };

  const char* env = std::getenv("CNN_DATA_DIR");
  if (env && *env) {
    const fs::path env_dir(env);
    if (try_dir(env_dir, "$CNN_DATA_DIR")) return env_dir.string();
    if (!dataset_name.empty() && try_dir(env_dir / dataset_name, "$CNN_DATA_DIR/" + dataset_name)) {
      return (env_dir / dataset_name).string();
    }
  }
#ifdef CNN_SOURCE_DIR
  const fs::path project(CNN_SOURCE_DIR);
  const fs::path in_project = project / "data" / dataset_name;
  if (try_dir(in_project, "project data folder")) return display(in_project);
  const fs::path shared = project / ".." / "shared" / "data" / dataset_name;
  if (try_dir(shared, "shared data folder")) return display(shared);
#endif

  std::string list;
  for (const std::string& place : looked) list += "\n  " + place;
  if (!env || !*env) list += "\n  ($CNN_DATA_DIR is not set)";
  const std::string arg = dataset_name == "mnist" ? " mnist" : "";
  throw ConfigError(fmt::format(
      "cannot find the {} dataset (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
      "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or .gz); looked in:{}\n"
      "Download it with scripts/download_data.sh{}, set CNN_DATA_DIR, or pass the directory "
      "with --data.",
      dataset_name, list, arg));
}

Dataset take_first(const Dataset& dataset, int64_t n) {
  CNN_CHECK(n > 0, ConfigError, "the number of items to take must be positive, got {}", n);
  CNN_CHECK(dataset.images.defined() && dataset.labels.defined(), Error,
            "take_first of an empty dataset");
  const int64_t count = std::min(n, dataset.size());
  const Tensor images = dataset.images.slice_batch(0, count);
  const Tensor labels = dataset.labels.slice_batch(0, count);
  Dataset out;
  out.classes = dataset.classes;
  out.source = dataset.source;
  out.images = Tensor::empty_host(images.shape());
  out.labels = Tensor::empty_host(labels.shape());
  std::memcpy(out.images.host(), images.host(),
              static_cast<size_t>(images.numel()) * sizeof(float));
  std::memcpy(out.labels.host(), labels.host(),
              static_cast<size_t>(labels.numel()) * sizeof(float));
  return out;
}

}  // namespace cnn
