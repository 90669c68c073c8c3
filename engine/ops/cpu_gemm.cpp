#include "engine/ops/cpu_gemm.h"

#if CNN_HAVE_CBLAS
#include <cblas.h>
#endif

#include <sstream>

namespace cnn {

std::string cpu_gemm_description() {
#if CNN_HAVE_CBLAS
  // openblas_get_config(): "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell
  // MAX_THREADS=64"; openblas_get_corename(): the kernels loaded, "Haswell".
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  std::istringstream words(config != nullptr ? config : "");
  std::string library, version;
  words >> library >> version;
  if (library.empty()) library = "OpenBLAS";
  return library + (version.empty() ? "" : " " + version) + " (" +
         (core != nullptr ? core : "unknown") + " kernels)";
#else
  return "plain loops (built without OpenBLAS)";
#endif
}

}  // namespace cnn
