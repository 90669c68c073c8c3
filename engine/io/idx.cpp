#include "engine/io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "engine/core/error.h"
#include "engine/io/byte_order.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

// Largest single read handed to fread or gzread.
constexpr size_t kChunkBytes = size_t{16} << 20;
// First allocation for the data; it doubles from there up to the size in the header.
constexpr size_t kInitialDataBytes = size_t{64} << 20;
// zlib's internal input buffer for gzip files.
constexpr unsigned kGzBufferBytes = 1u << 20;

template <class... Args>
DataError idx_error(const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
  return DataError(
      fmt::format("IDX file '{}': {}", path, fmt::format(format, std::forward<Args>(args)...)));
}

std::string errno_message(int err) { return std::generic_category().message(err); }

// A stream of bytes: the file itself, or its decompressed content.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes into dst; returns fewer only at the end of the stream. Throws
  // DataError on a read error or a corrupt stream.
  virtual size_t read(uint8_t* dst, size_t n) = 0;
  virtual bool compressed() const = 0;
};

class RawSource : public ByteSource {
 public:
  RawSource(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  ~RawSource() override { std::fclose(file_); }
  RawSource(const RawSource&) = delete;
  RawSource& operator=(const RawSource&) = delete;

  size_t read(uint8_t* dst, size_t n) override {
    size_t total = 0;
    while (total < n) {
      const size_t want = std::min(n - total, kChunkBytes);
      const size_t got = std::fread(dst + total, 1, want, file_);
      total += got;
      if (got < want) {
        if (std::ferror(file_)) {
          throw idx_error(path_, "read error after {} bytes: {}", total, errno_message(errno));
        }
        break;  // end of file
      }
    }
    return total;
  }
  bool compressed() const override { return false; }

 private:
  std::FILE* file_;
  std::string path_;
};

class GzipSource : public ByteSource {
 public:
  GzipSource(gzFile file, std::string path) : file_(file), path_(std::move(path)) {}
  ~GzipSource() override { gzclose_r(file_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  size_t read(uint8_t* dst, size_t n) override {
    size_t total = 0;
    while (total < n) {
      const size_t want = std::min(n - total, kChunkBytes);
      const int got = gzread(file_, dst + total, static_cast<unsigned>(want));
      if (got < 0) throw corrupt();
      total += static_cast<size_t>(got);
      if (static_cast<size_t>(got) < want) {
        // A short read is the end of the stream, or an error to be read from gzerror.
        int code = Z_OK;
        gzerror(file_, &code);
        if (code != Z_OK) throw corrupt();
        break;
      }
    }
    return total;
  }
  bool compressed() const override { return true; }

 private:
  DataError corrupt() {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    const std::string detail = (code == Z_ERRNO) ? errno_message(errno)
                               : message         ? std::string(message)
                                                 : std::string("unknown error");
    if (code == Z_BUF_ERROR) {
      return idx_error(path_, "corrupt gzip stream: it ends early ({}); the file is truncated",
                       detail);
    }
    return idx_error(path_, "corrupt gzip stream ({})", detail);
  }

  gzFile file_;
  std::string path_;
};

std::unique_ptr<ByteSource> open_source(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw idx_error(path, "is a directory, not a file");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw idx_error(path, "cannot open: {}", errno_message(errno));
  unsigned char head[2] = {0, 0};
  const size_t got = std::fread(head, 1, 2, file);
  const bool read_failed = std::ferror(file) != 0;
  const int read_errno = errno;
  if (read_failed) {
    std::fclose(file);
    throw idx_error(path, "cannot read: {}", errno_message(read_errno));
  }
  if (got == 2 && head[0] == 0x1f && head[1] == 0x8b) {
    std::fclose(file);
    gzFile gz = gzopen(path.c_str(), "rb");
    if (!gz) throw idx_error(path, "cannot open as gzip: {}", errno_message(errno));
    gzbuffer(gz, kGzBufferBytes);
    return std::make_unique<GzipSource>(gz, path);
  }
  std::rewind(file);
  return std::make_unique<RawSource>(file, path);
}

uint32_t idx_magic(int rank) { return 0x00000800u | static_cast<uint32_t>(rank); }

const char* rank_kind(int rank) {
  switch (rank) {
    case 1:
      return "labels";
    case 3:
      return "images";
    default:
      return "arrays";
  }
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += " x ";
    s += std::to_string(dims[i]);
  }
  return s;
}

}  // namespace

int64_t IdxArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

IdxArray read_idx(const std::string& path, int expected_rank) {
  CNN_CHECK(expected_rank >= 0 && expected_rank <= 4, Error,
            "read_idx: expected_rank must be 0 (any) or 1..4, got {}", expected_rank);
  std::unique_ptr<ByteSource> source = open_source(path);
  const char* what = source->compressed() ? "the decompressed stream" : "the file";

  // Magic number: 0x00, 0x00, type, rank.
  uint8_t magic_bytes[4];
  const size_t magic_got = source->read(magic_bytes, 4);
  if (magic_got == 0) {
    throw idx_error(path, "{} is empty (0 bytes); expected an IDX header", what);
  }
  if (magic_got < 4) {
    throw idx_error(path, "truncated header: {} holds only {} bytes, less than the 4-byte magic",
                    what, magic_got);
  }
  const uint32_t magic = big_endian_u32(magic_bytes);
  const int rank = magic_bytes[3];
  const std::string wanted =
      expected_rank ? fmt::format("0x{:08x} for IDX {} ({} dimensions, unsigned bytes)",
                                  idx_magic(expected_rank), rank_kind(expected_rank), expected_rank)
                    : std::string("0x000008NN (unsigned bytes, NN dimensions)");
  if (magic_bytes[0] != 0 || magic_bytes[1] != 0) {
    throw idx_error(path, "not an IDX file: wrong magic number 0x{:08x}, expected {}", magic,
                    wanted);
  }
  if (magic_bytes[2] != 0x08) {
    throw idx_error(path,
                    "wrong magic number 0x{:08x}: data type 0x{:02x} is not supported, only "
                    "unsigned bytes (0x08); expected {}",
                    magic, static_cast<unsigned>(magic_bytes[2]), wanted);
  }
  if (expected_rank != 0 && rank != expected_rank) {
    throw idx_error(path, "wrong magic number 0x{:08x}: {} dimensions, expected {}", magic, rank,
                    wanted);
  }
  if (rank < 1 || rank > 4) {
    throw idx_error(path, "wrong magic number 0x{:08x}: {} dimensions, expected 1 to 4", magic,
                    rank);
  }

  // Dimensions: one big-endian uint32 each; the product is bounded before allocating.
  uint8_t dim_bytes[16];
  const size_t dim_want = 4 * static_cast<size_t>(rank);
  const size_t dim_got = source->read(dim_bytes, dim_want);
  if (dim_got < dim_want) {
    throw idx_error(path, "truncated header: {} dimensions need {} header bytes, {} holds {}", rank,
                    4 + dim_want, what, 4 + dim_got);
  }
  IdxArray out;
  out.path = path;
  uint64_t expected_bytes = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = big_endian_u32(dim_bytes + 4 * i);
    if (d == 0) throw idx_error(path, "dimension {} of {} is zero", i, rank);
    out.dims.push_back(static_cast<int64_t>(d));
    if (expected_bytes > kIdxMaxDataBytes / d) {
      throw idx_error(path,
                      "absurd dimensions in the header ({}...): more than the {} bytes allowed",
                      dims_string(out.dims), kIdxMaxDataBytes);
    }
    expected_bytes *= d;
  }

  // Data: exactly product(dims) bytes, no more, no less. The buffer grows as data
  // arrives, so a short file with a large header does not allocate what it claims.
  const auto want = static_cast<size_t>(expected_bytes);
  out.data.resize(std::min(want, kInitialDataBytes));
  size_t data_got = 0;
  while (true) {
    data_got += source->read(out.data.data() + data_got, out.data.size() - data_got);
    if (data_got < out.data.size() || data_got == want) break;
    out.data.resize(std::min(want, 2 * out.data.size()));
  }
  if (data_got < want) {
    throw idx_error(path,
                    "truncated: the header (dims {}) needs {} data bytes, but {} holds {} "
                    "({} bytes expected in all, {} present)",
                    dims_string(out.dims), expected_bytes, what, data_got,
                    4 + dim_want + expected_bytes, 4 + dim_want + data_got);
  }
  std::vector<uint8_t> scratch(1 << 16);
  uint64_t extra = 0;
  while (extra <= kIdxMaxDataBytes) {
    const size_t got = source->read(scratch.data(), scratch.size());
    extra += got;
    if (got < scratch.size()) break;
  }
  if (extra > 0) {
    throw idx_error(path,
                    "{} trailing bytes: the header (dims {}) needs {} data bytes, but {} holds "
                    "{}{}",
                    extra, dims_string(out.dims), expected_bytes, what, expected_bytes + extra,
                    extra > kIdxMaxDataBytes ? " or more" : "");
  }
  return out;
}

IdxArray read_idx_images(const std::string& path) { return read_idx(path, 3); }

IdxArray read_idx_labels(const std::string& path) { return read_idx(path, 1); }

}  // namespace cnn
