// Work split over the CPU backend's threads: OpenMP where the build has it (CNN_OPENMP),
// else a plain loop. Only for use inside engine sources (the build defines
// CNN_HAVE_OPENMP for them).
//
// The rule that keeps the CPU backend's results independent of the thread count: a task
// writes only what its index owns and computes it the same way whichever thread runs it.
// A reduction across tasks is split into a fixed number of parts (a function of the
// shape, never of the threads) and the parts are summed in index order.
#pragma once

#include <cstdint>

#if CNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace cnn {

// The threads a CPU backend uses when not told: the cores this process may run on (or
// OMP_NUM_THREADS), 1 without OpenMP.
inline int default_cpu_threads() {
#if CNN_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// f(index, thread) for every index in [0, count), on min(threads, count) threads;
// `thread` (in [0, min(threads, count))) selects per-thread scratch. Indices go to threads
// in contiguous, equal runs. f must not throw.
template <class F>
void parallel_for(int threads, int64_t count, F&& f) {
#if CNN_HAVE_OPENMP
  if (threads > 1 && count > 1) {
    const int used = count < threads ? static_cast<int>(count) : threads;
#pragma omp parallel for num_threads(used) schedule(static)
    for (int64_t i = 0; i < count; ++i) f(i, omp_get_thread_num());
    return;
  }
#endif
  for (int64_t i = 0; i < count; ++i) f(i, 0);
}

// f(first, end) over at most `threads` contiguous runs of [0, count), none shorter than
// min_run unless count is, each on a thread of its own: for work whose parts are
// independent, such as the images of a batch or the channels of a batch normalization.
template <class F>
void parallel_ranges(int threads, int64_t count, F&& f, int64_t min_run = 1) {
  int64_t parts = min_run > 1 ? count / min_run : count;
  if (parts > threads) parts = threads;
  if (parts <= 1) {
    if (count > 0) f(int64_t{0}, count);
    return;
  }
  parallel_for(threads, parts,
               [&](int64_t part, int) { f(part * count / parts, (part + 1) * count / parts); });
}

}  // namespace cnn
