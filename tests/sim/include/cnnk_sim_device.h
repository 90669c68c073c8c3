// What the simulated device (sim_device.cpp) offers the simulated libraries (cuBLAS and
// cuDNN stand-ins) and the simulator's own tests: stream-ordered work that a capture
// records, the device-memory registry, and the device's size.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>
#include <string>

namespace cnnk_sim {

// Runs `work` in `stream`'s order: at once, or, while the stream is being captured, at
// each replay of the captured graph. Whatever `work` needs from the caller's arguments it
// must hold by value (a replay happens after the call has returned, as on a GPU, where a
// captured node keeps the arguments it was given). `what` names the work in messages.
// Fails with cudaErrorInvalidResourceHandle for a destroyed stream.
cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> work);

// Whether [p, p + bytes) lies inside one live cudaMalloc block (bytes 0: p inside one).
bool is_device_memory(const void* p, size_t bytes);

// Whether the calling thread may synchronize with or allocate on the device now: false,
// with the capture invalidated and the reason on stderr, when a capture in progress forbids
// it (this thread's in thread-local mode, anyone's in global mode) or `stream` is being
// captured. `call` names the call in the message.
bool capture_allows(const char* call, cudaStream_t stream = nullptr);

// Leaves `error` for this thread's next cudaGetLastError, as a library's own kernel launch
// that failed does (cuDNN turning an algorithm down because its launch failed returns a
// status and leaves the runtime's error behind): no message, and replays go on.
void leave_last_error(cudaError_t error);

// Reports an error as a failed launch does: the message on stderr, the error for the next
// cudaGetLastError.
void report(cudaError_t error, const std::string& message);

// The device memory cudaMalloc may hand out in all (default 16 GiB of host memory, taken
// only as it is asked for); suites shrink it to provoke out-of-memory paths.
void set_device_memory(size_t bytes);
size_t device_memory_in_use();

}  // namespace cnnk_sim
