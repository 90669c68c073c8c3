// IDX reading: good files (raw and gzip) come back exactly; every malformed file is
// rejected with a DataError that names the file and the problem.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/idx.h"
#include "io/io_test_util.h"

namespace cnn {
namespace {

using iotest::Bytes;
using iotest::Contains;
using iotest::error_message;
using iotest::images_idx;
using iotest::labels_idx;
using iotest::pattern_bytes;
using iotest::ScratchDir;
using iotest::write_gz;
using iotest::write_raw;

std::string idx_error(const std::string& path, int rank = 0) {
  return error_message<DataError>([&] { read_idx(path, rank); });
}

TEST(Idx, RawImagesRoundTrip) {
  ScratchDir dir;
  const Bytes pixels = pattern_bytes(5 * 4 * 3, 7);
  const std::string path = dir.file("images-idx3-ubyte");
  write_raw(path, images_idx(5, 4, 3, pixels));
  const IdxArray a = read_idx_images(path);
  EXPECT_EQ(a.dims, (std::vector<int64_t>{5, 4, 3}));
  EXPECT_EQ(a.numel(), 60);
  EXPECT_EQ(a.data, pixels);
  EXPECT_EQ(a.path, path);
}

TEST(Idx, GzipImagesRoundTrip) {
  ScratchDir dir;
  const Bytes pixels = pattern_bytes(7 * 28 * 28, 3);
  const std::string path = dir.file("images-idx3-ubyte.gz");
  write_gz(path, images_idx(7, 28, 28, pixels));
  const IdxArray a = read_idx(path, 3);
  EXPECT_EQ(a.dims, (std::vector<int64_t>{7, 28, 28}));
  EXPECT_EQ(a.data, pixels);
}

TEST(Idx, LabelsRoundTripRawAndGzip) {
  ScratchDir dir;
  const Bytes labels = pattern_bytes(1001, 11, 10);
  write_raw(dir.file("l.raw"), labels_idx(labels));
  write_gz(dir.file("l.gz"), labels_idx(labels));
  for (const char* name : {"l.raw", "l.gz"}) {
    const IdxArray a = read_idx_labels(dir.file(name));
    EXPECT_EQ(a.dims, (std::vector<int64_t>{1001})) << name;
    EXPECT_EQ(a.data, labels) << name;
  }
}

TEST(Idx, LargeGzipSpanningManyChunks) {
  // Bigger than the reader's internal buffers, to cross chunk boundaries.
  ScratchDir dir;
  const Bytes pixels = pattern_bytes(3000 * 28 * 28, 5);
  write_gz(dir.file("big.gz"), images_idx(3000, 28, 28, pixels));
  const IdxArray a = read_idx_images(dir.file("big.gz"));
  EXPECT_EQ(a.data, pixels);
}

TEST(Idx, CompressionIsDetectedByContentNotName) {
  ScratchDir dir;
  const Bytes pixels = pattern_bytes(2 * 3 * 3, 9);
  const Bytes file = images_idx(2, 3, 3, pixels);
  write_gz(dir.file("gzip-without-suffix"), file);
  write_raw(dir.file("raw-with-suffix.gz"), file);
  EXPECT_EQ(read_idx_images(dir.file("gzip-without-suffix")).data, pixels);
  EXPECT_EQ(read_idx_images(dir.file("raw-with-suffix.gz")).data, pixels);
}

TEST(Idx, AnyRankWhenNotAsked) {
  ScratchDir dir;
  const Bytes data = pattern_bytes(2 * 3 * 4 * 5, 13);
  write_raw(dir.file("a4"), iotest::idx_bytes(0x00000804u, {2, 3, 4, 5}, data));
  const IdxArray a = read_idx(dir.file("a4"));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(a.data, data);
}

TEST(Idx, TruncatedDataRejectedWithByteCounts) {
  ScratchDir dir;
  Bytes file = images_idx(5, 4, 3, pattern_bytes(60));
  file.resize(file.size() - 7);  // 53 of 60 data bytes
  for (bool gz : {false, true}) {
    const std::string path = dir.file(gz ? "t.gz" : "t.raw");
    gz ? write_gz(path, file) : write_raw(path, file);
    const std::string msg = idx_error(path, 3);
    EXPECT_TRUE(Contains(msg, path));
    EXPECT_TRUE(Contains(msg, "truncated"));
    EXPECT_TRUE(Contains(msg, "needs 60 data bytes"));
    EXPECT_TRUE(Contains(msg, "holds 53"));
  }
}

TEST(Idx, TruncatedHeaderRejected) {
  ScratchDir dir;
  write_raw(dir.file("h2"), Bytes{0x00, 0x00});
  EXPECT_TRUE(Contains(idx_error(dir.file("h2")), "truncated header"));
  Bytes header = images_idx(5, 4, 3, {});
  header.resize(10);  // magic and half of the dimensions
  write_raw(dir.file("h10"), header);
  const std::string msg = idx_error(dir.file("h10"), 3);
  EXPECT_TRUE(Contains(msg, "truncated header"));
  EXPECT_TRUE(Contains(msg, "need 16 header bytes"));
}

TEST(Idx, TrailingBytesRejected) {
  ScratchDir dir;
  Bytes file = labels_idx(pattern_bytes(10, 1, 10));
  file.push_back(1);
  file.push_back(2);
  file.push_back(3);
  for (bool gz : {false, true}) {
    const std::string path = dir.file(gz ? "t.gz" : "t.raw");
    gz ? write_gz(path, file) : write_raw(path, file);
    const std::string msg = idx_error(path, 1);
    EXPECT_TRUE(Contains(msg, path));
    EXPECT_TRUE(Contains(msg, "3 trailing bytes"));
    EXPECT_TRUE(Contains(msg, "needs 10 data bytes"));
    EXPECT_TRUE(Contains(msg, "holds 13"));
  }
}

TEST(Idx, WrongMagicRejected) {
  ScratchDir dir;
  write_raw(dir.file("m"), iotest::idx_bytes(0x12345678u, {1}, {0}));
  std::string msg = idx_error(dir.file("m"), 1);
  EXPECT_TRUE(Contains(msg, dir.file("m")));
  EXPECT_TRUE(Contains(msg, "not an IDX file"));
  EXPECT_TRUE(Contains(msg, "0x12345678"));
  EXPECT_TRUE(Contains(msg, "0x00000801"));

  // Right layout, but signed bytes (type 0x09) instead of unsigned.
  write_raw(dir.file("t"), iotest::idx_bytes(0x00000901u, {1}, {0}));
  msg = idx_error(dir.file("t"), 1);
  EXPECT_TRUE(Contains(msg, "wrong magic number 0x00000901"));
  EXPECT_TRUE(Contains(msg, "data type 0x09"));

  // A text file.
  write_raw(dir.file("text"), Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
  EXPECT_TRUE(Contains(idx_error(dir.file("text"), 3), "not an IDX file"));
}

TEST(Idx, WrongDimensionCountRejected) {
  ScratchDir dir;
  // A labels file where images are expected, and an images file where labels are.
  write_raw(dir.file("labels"), labels_idx(Bytes{1, 2, 3}));
  write_raw(dir.file("images"), images_idx(1, 2, 2, Bytes{1, 2, 3, 4}));
  std::string msg = error_message<DataError>([&] { read_idx_images(dir.file("labels")); });
  EXPECT_TRUE(Contains(msg, "wrong magic number 0x00000801: 1 dimensions"));
  EXPECT_TRUE(Contains(msg, "expected 0x00000803"));
  msg = error_message<DataError>([&] { read_idx_labels(dir.file("images")); });
  EXPECT_TRUE(Contains(msg, "wrong magic number 0x00000803: 3 dimensions"));
  EXPECT_TRUE(Contains(msg, "expected 0x00000801"));
  // Rank 0 and rank 9 are never valid.
  write_raw(dir.file("r0"), iotest::idx_bytes(0x00000800u, {}, {}));
  EXPECT_TRUE(Contains(idx_error(dir.file("r0")), "0 dimensions, expected 1 to 4"));
  write_raw(dir.file("r9"), iotest::idx_bytes(0x00000809u, {}, {}));
  EXPECT_TRUE(Contains(idx_error(dir.file("r9")), "9 dimensions"));
}

TEST(Idx, ZeroDimensionRejected) {
  ScratchDir dir;
  write_raw(dir.file("z"), images_idx(3, 0, 28, {}));
  const std::string msg = idx_error(dir.file("z"), 3);
  EXPECT_TRUE(Contains(msg, "dimension 1 of 3 is zero"));
}

TEST(Idx, AbsurdDimensionsRejectedBeforeAllocating) {
  ScratchDir dir;
  write_raw(dir.file("huge"), images_idx(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, Bytes(16)));
  EXPECT_TRUE(Contains(idx_error(dir.file("huge"), 3), "absurd dimensions"));
  // Just over 2 GiB in all, though each dimension alone is modest.
  write_raw(dir.file("big"), images_idx(2740, 28 * 28, 1000, Bytes(16)));
  EXPECT_TRUE(Contains(idx_error(dir.file("big"), 3), "absurd dimensions"));
  // Just under the limit: accepted as a header, then found truncated (without first
  // allocating the 2 GiB it claims).
  write_raw(dir.file("short"), images_idx(2739, 28 * 28, 1000, Bytes(16)));
  const std::string msg = idx_error(dir.file("short"), 3);
  EXPECT_TRUE(Contains(msg, "needs 2147376000 data bytes"));
  EXPECT_TRUE(Contains(msg, "holds 16"));
}

TEST(Idx, EmptyFileRejected) {
  ScratchDir dir;
  write_raw(dir.file("empty"), {});
  std::string msg = idx_error(dir.file("empty"), 3);
  EXPECT_TRUE(Contains(msg, dir.file("empty")));
  EXPECT_TRUE(Contains(msg, "empty"));
  // A valid gzip stream of nothing.
  write_gz(dir.file("empty.gz"), {});
  msg = idx_error(dir.file("empty.gz"), 3);
  EXPECT_TRUE(Contains(msg, "decompressed stream is empty"));
}

TEST(Idx, CorruptGzipRejected) {
  ScratchDir dir;
  write_gz(dir.file("good.gz"), images_idx(50, 28, 28, pattern_bytes(50 * 28 * 28, 21, 16)));
  Bytes gz = iotest::read_all(dir.file("good.gz"));
  ASSERT_GT(gz.size(), 200u);

  // Garbage in the middle of the deflate stream.
  Bytes garbled = gz;
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) {
    garbled[i] = static_cast<uint8_t>(garbled[i] ^ 0x5a);
  }
  write_raw(dir.file("garbled.gz"), garbled);
  std::string msg = idx_error(dir.file("garbled.gz"), 3);
  EXPECT_TRUE(Contains(msg, dir.file("garbled.gz")));
  EXPECT_TRUE(Contains(msg, "corrupt gzip stream"));

  // The gzip magic followed by nonsense.
  write_raw(dir.file("magic-only.gz"), Bytes{0x1f, 0x8b, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42});
  EXPECT_TRUE(Contains(idx_error(dir.file("magic-only.gz"), 3), "corrupt gzip stream"));

  // A damaged checksum in the trailer: all the data decodes, the check fails.
  Bytes bad_crc = gz;
  bad_crc[gz.size() - 8] = static_cast<uint8_t>(bad_crc[gz.size() - 8] ^ 0xff);
  write_raw(dir.file("bad-crc.gz"), bad_crc);
  EXPECT_TRUE(Contains(idx_error(dir.file("bad-crc.gz"), 3), "corrupt gzip stream"));

  // A gzip file cut short: the compressed stream ends early.
  Bytes cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  write_raw(dir.file("cut.gz"), cut);
  msg = idx_error(dir.file("cut.gz"), 3);
  EXPECT_TRUE(Contains(msg, "corrupt gzip stream"));
  EXPECT_TRUE(Contains(msg, "truncated"));
}

TEST(Idx, MissingFileAndDirectoryRejected) {
  ScratchDir dir;
  std::string msg = idx_error(dir.file("nope"), 3);
  EXPECT_TRUE(Contains(msg, dir.file("nope")));
  EXPECT_TRUE(Contains(msg, "cannot open"));
  msg = idx_error(dir.path().string(), 3);
  EXPECT_TRUE(Contains(msg, "is a directory"));
}

}  // namespace
}  // namespace cnn
