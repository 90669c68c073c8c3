// Writing files so that a crash or a kill at any moment leaves either the old file or
// the new one, never a torn one: write a temporary beside it, flush it to disk, rename.
#pragma once

#include <string>

namespace cnn {

// Throws cnn::Error with the path and the system's reason when any step fails; the
// temporary is removed on failure.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace cnn
