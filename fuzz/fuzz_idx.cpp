// Fuzz target: the IDX reader (engine/io/idx.h), raw and gzip-compressed.
//
// Any input must either load, as an array that keeps the reader's promises, or be
// refused with cnn::DataError. Anything else (another exception, a sanitizer report,
// a failed invariant, an allocation past libFuzzer's -rss_limit_mb) is a finding.
#include <cstddef>
#include <cstdint>

#include "engine/core/error.h"
#include "engine/io/idx.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static cnn::fuzz::ScratchFile file("idx");
  const std::string& path = file.write(data, size);
  cnn::IdxArray a;
  try {
    a = cnn::read_idx(path);  // any rank
  } catch (const cnn::DataError&) {
    return 0;
  }
  const int rank = static_cast<int>(a.dims.size());
  CNN_FUZZ_ASSERT(rank >= 1 && rank <= 4);
  uint64_t bytes = 1;
  for (int64_t d : a.dims) {
    CNN_FUZZ_ASSERT(d > 0);
    bytes *= static_cast<uint64_t>(d);
    CNN_FUZZ_ASSERT(bytes <= cnn::kIdxMaxDataBytes);
  }
  CNN_FUZZ_ASSERT(a.data.size() == bytes);
  CNN_FUZZ_ASSERT(a.numel() == static_cast<int64_t>(bytes));
  CNN_FUZZ_ASSERT(a.path == path);

  // Asking for the rank the file has gives the same array; asking for another refuses.
  const cnn::IdxArray same = cnn::read_idx(path, rank);
  CNN_FUZZ_ASSERT(same.dims == a.dims && same.data == a.data);
  const int other = rank == 1 ? 3 : 1;
  bool refused = false;
  try {
    cnn::read_idx(path, other);
  } catch (const cnn::DataError&) {
    refused = true;
  }
  CNN_FUZZ_ASSERT(refused);
  return 0;
}
