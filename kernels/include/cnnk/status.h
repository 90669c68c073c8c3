// Conventions of every launcher in kernels/: it takes device pointers, a problem
// geometry from cnnk/geometry.h and a stream; it never allocates (a workspace, when one
// is needed, is sized by a *_workspace_bytes query and passed in); it returns the launch
// status (cudaGetLastError right after the launch) for the caller to check. Outputs are
// assigned, never accumulated, unless the name says so.
#pragma once

namespace cnnk {

// Whether the native kernel supports a configuration, and why not: the engine falls back
// to cuDNN when it does not, and says so.
struct Support {
  bool ok = true;
  const char* reason = "";
  static Support yes() { return {}; }
  static Support no(const char* why) { return {false, why}; }
};

}  // namespace cnnk
