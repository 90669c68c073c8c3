// Fixed-width integers in file formats' byte orders, read from and written to bytes
// whatever the host's order: IDX headers and PNG chunk lengths are big-endian, the
// safetensors header length little-endian.
#pragma once

#include <cstdint>
#include <string>

namespace cnn {

inline uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint32_t big_endian_u32(const char* p) {
  return big_endian_u32(reinterpret_cast<const unsigned char*>(p));
}

inline uint64_t little_endian_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline void append_little_endian_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace cnn
