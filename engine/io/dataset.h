// Image-classification datasets in memory, loaded from IDX files (MNIST, Fashion-MNIST),
// and where to find them on disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace cnn {

struct Dataset {
  Tensor images;  // [N, 1, rows, cols] float32 host, pixel byte / 255, so in [0, 1]
  Tensor labels;  // [N] float32 host, class ids 0 .. classes - 1
  int classes = 10;
  std::string source;  // where it came from, for messages ("<images> + <labels>")

  int64_t size() const { return labels.defined() ? labels.shape()[0] : 0; }
};

struct DatasetSplits {
  Dataset train, test;
};

// Number of classes of MNIST and Fashion-MNIST; labels must lie in [0, kDatasetClasses).
constexpr int kDatasetClasses = 10;

// The standard file names of the IDX datasets (without the optional ".gz").
inline constexpr const char* kTrainImagesFile = "train-images-idx3-ubyte";
inline constexpr const char* kTrainLabelsFile = "train-labels-idx1-ubyte";
inline constexpr const char* kTestImagesFile = "t10k-images-idx3-ubyte";
inline constexpr const char* kTestLabelsFile = "t10k-labels-idx1-ubyte";

// Loads an images file ([N, rows, cols]) and a labels file ([N]) into a Dataset. Throws
// cnn::DataError when either file is malformed, the counts differ, or a label is not
// below 10.
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path);

// Loads the train and t10k pairs from a directory holding the four standard files, each
// either gzip-compressed (<name>.gz) or raw (<name>); .gz is preferred when both exist.
// Throws cnn::DataError listing the files that are missing. With TestOnly the training
// split is left empty (and its files need not be there): what evaluate reads.
enum class DatasetParts { Both, TestOnly };
DatasetSplits load_dataset_dir(const std::string& dir, DatasetParts parts = DatasetParts::Both);

// True when `dir` holds all four standard files (gz or raw).
bool dataset_dir_complete(const std::string& dir);

// The directory to load `dataset_name` ("fashion-mnist" or "mnist") from:
//  1. `flag`, when non-empty (a --data flag); it must exist (cnn::ConfigError);
//  2. else $CNN_DATA_DIR, when set: the dataset folder itself, or a parent holding
//     <dataset_name>/;
//  3. else <project>/data/<dataset_name> (where scripts/download_data.sh puts it);
//  4. else <project>/../shared/data/<dataset_name>.
// From 2 on, the first place that holds the four files wins. When none does, throws
// cnn::ConfigError listing every place looked at and how to download the data.
std::string resolve_data_dir(const std::string& flag, const std::string& dataset_name);

// A copy of the first n items (n is clamped to the size; it must be positive), for
// --limit. The copy owns its own storage.
Dataset take_first(const Dataset& dataset, int64_t n);

}  // namespace cnn
