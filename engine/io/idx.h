// Reading IDX files (the format of MNIST and Fashion-MNIST), gzip-compressed or raw.
//
// An IDX file is a 4-byte magic number (two zero bytes, a type byte, the number of
// dimensions), one big-endian uint32 per dimension, then the data in row-major order.
// Only unsigned-byte data (type 0x08) is supported, which is what the datasets use.
// Compression is detected from the content (the gzip magic 1f 8b), not from the name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnn {

// The contents of an IDX file: its dimensions and its raw unsigned bytes.
struct IdxArray {
  std::vector<int64_t> dims;  // from the header, each > 0
  std::vector<uint8_t> data;  // exactly product(dims) bytes
  std::string path;           // the file it came from, for messages

  int64_t numel() const;
};

// The most data bytes an IDX file may hold (2 GiB); larger headers are rejected
// before anything is allocated.
constexpr uint64_t kIdxMaxDataBytes = uint64_t{1} << 31;

// Reads and validates an IDX file of unsigned bytes. `expected_rank` is the number of
// dimensions it must have (3 for images, 1 for labels; the magic must then be
// 0x00000803 or 0x00000801); 0 accepts any rank from 1 to 4. Throws cnn::DataError,
// naming the file, when it is missing, empty, not IDX, of another type or rank, has a
// zero or absurd dimension, holds more or fewer bytes than its dimensions say, or is a
// corrupt gzip stream.
IdxArray read_idx(const std::string& path, int expected_rank = 0);

// read_idx for image files ([N, rows, cols], magic 0x00000803).
IdxArray read_idx_images(const std::string& path);
// read_idx for label files ([N], magic 0x00000801).
IdxArray read_idx_labels(const std::string& path);

}  // namespace cnn
