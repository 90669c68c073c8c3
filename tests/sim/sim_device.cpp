// The simulated device's runtime (cuda_runtime_api.h): memory, streams, stream capture
// into graphs, events, and the device's description. Kernels run through the scheduler of
// sim_runtime.cpp; this file decides when: at once, or at each replay of a captured graph.
//
// The point is to hold the host code that drives a GPU (engine/backend/cuda) to the rules
// a GPU holds it to, on a machine without one: a captured step may not allocate, free,
// synchronize or copy to or from host memory; a copy's pointers must match its direction;
// memory is freed once, and only what cudaMalloc gave; a captured launch keeps the
// arguments it was captured with. Each breach fails the call the way the CUDA runtime
// fails it, with a message on stderr that says which rule.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cnnk_sim_device.h"
#include "cuda_profiler_api.h"
#include "cuda_runtime_api.h"

namespace cnnk_sim {
namespace {

struct Op {
  std::string what;
  std::function<void()> work;
};

// A capture in progress on one stream: what it has recorded, and whether a forbidden call
// has spoiled it (cudaStreamEndCapture then fails).
struct Capture {
  cudaStreamCaptureMode mode;
  std::thread::id owner;
  std::vector<Op> ops;
  std::string spoiled_by;
};

}  // namespace
}  // namespace cnnk_sim

struct CUstream_st {
  std::unique_ptr<cnnk_sim::Capture> capture;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded = false;
};
struct CUgraphNode_st {
  cudaGraphNodeType type;
};
struct CUgraph_st {
  std::vector<cnnk_sim::Op> ops;
  std::vector<CUgraphNode_st> nodes;  // one per op, for cudaGraphGetNodes
};
struct CUgraphExec_st {
  std::vector<cnnk_sim::Op> ops;
};

namespace cnnk_sim {
namespace {

constexpr size_t kAlignment = 256;  // as cudaMalloc's
// A small L2, reported as the device's: timings write twice its size between repeats to
// flush it, which here costs host time and measures nothing.
constexpr int kL2Bytes = 1 << 20;

// The device's state, shared by every host thread (as a CUDA context is).
struct Device {
  std::mutex mutex;
  size_t capacity = size_t(16) << 30;
  size_t in_use = 0;
  std::map<const char*, size_t> blocks;  // live cudaMalloc blocks by address
  std::set<CUstream_st*> streams;
};
Device& device() {
  static Device d;
  return d;
}

// The error cudaGetLastError returns, per host thread as the runtime keeps it, and a count
// of reports (a graph launch fails if any of its nodes reported).
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local uint64_t t_reports = 0;

cudaError_t fail(cudaError_t error, const std::string& message) {
  report(error, message);
  return error;
}

bool live_stream(Device& d, cudaStream_t s) { return !s || d.streams.count(s) != 0; }

// A captured op's node type, from what enqueued it: the simulated libraries' calls are
// kernels (one each), as are launches.
cudaGraphNodeType node_type(const std::string& what) {
  if (what == "cudaMemcpyAsync") return cudaGraphNodeTypeMemcpy;
  if (what == "cudaMemsetAsync") return cudaGraphNodeTypeMemset;
  if (what == "cudaEventRecord") return cudaGraphNodeTypeEmpty;
  return cudaGraphNodeTypeKernel;
}

bool device_range(const Device& d, const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  auto it = d.blocks.upper_bound(c);
  if (it == d.blocks.begin()) return false;
  --it;
  const size_t offset = static_cast<size_t>(c - it->first);
  return offset < it->second ? bytes <= it->second - offset : (offset == it->second && bytes == 0);
}

// A copy's pointers against its direction: "" when they match.
std::string direction_error(const Device& d, void* dst, const void* src, size_t bytes,
                            cudaMemcpyKind kind) {
  const bool dst_dev = device_range(d, dst, bytes), src_dev = device_range(d, src, bytes);
  bool want_dst = false, want_src = false;
  switch (kind) {
    case cudaMemcpyHostToHost:
      break;
    case cudaMemcpyHostToDevice:
      want_dst = true;
      break;
    case cudaMemcpyDeviceToHost:
      want_src = true;
      break;
    case cudaMemcpyDeviceToDevice:
      want_dst = want_src = true;
      break;
    case cudaMemcpyDefault:
      return "";
  }
  auto side = [](bool dev) { return dev ? "device memory" : "host memory (or not a whole block)"; };
  if (dst_dev != want_dst || src_dev != want_src)
    return "a copy of " + std::to_string(bytes) + " bytes of kind " + std::to_string(int(kind)) +
           " from " + side(src_dev) + " to " + side(dst_dev) +
           ": the pointers do not match the direction";
  return "";
}

// Whether the capture `c` on stream `s` forbids a call on this thread: a call on the
// captured stream always; a device-wide one (stream null) unless the capture is relaxed
// or another thread's thread-local one.
bool forbids(const Capture& c, cudaStream_t s, cudaStream_t call_stream) {
  if (call_stream) return call_stream == s;
  switch (c.mode) {
    case cudaStreamCaptureModeGlobal:
      return true;
    case cudaStreamCaptureModeThreadLocal:
      return c.owner == std::this_thread::get_id();
    case cudaStreamCaptureModeRelaxed:
      return false;
  }
  return false;
}

// A replay: every node in order; failed if any node reported a failure.
cudaError_t run_ops(const std::vector<Op>& ops) {
  const uint64_t before = t_reports;
  for (const Op& op : ops) op.work();
  return t_reports == before ? cudaSuccess : cudaErrorLaunchFailure;
}

}  // namespace

void leave_last_error(cudaError_t error) {
  if (t_last_error == cudaSuccess) t_last_error = error;
}

void report(cudaError_t error, const std::string& message) {
  std::fprintf(stderr, "kernel simulator: %s\n", message.c_str());
  ++t_reports;
  if (t_last_error == cudaSuccess) t_last_error = error;
}

cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> work) {
  Device& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    if (!live_stream(d, stream))
      return fail(cudaErrorInvalidResourceHandle,
                  std::string(what) + " on a stream that does not exist (destroyed?)");
    if (stream && stream->capture) {
      Capture& c = *stream->capture;
      if (!c.spoiled_by.empty())
        return fail(
            cudaErrorStreamCaptureInvalidated,
            std::string(what) + " on a stream whose capture " + c.spoiled_by + " invalidated");
      c.ops.push_back(Op{what, std::move(work)});
      return cudaSuccess;
    }
  }
  work();
  return cudaSuccess;
}

bool is_device_memory(const void* p, size_t bytes) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  return device_range(d, p, bytes);
}

bool capture_allows(const char* call, cudaStream_t stream) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  for (CUstream_st* s : d.streams) {
    if (!s->capture || !forbids(*s->capture, s, stream)) continue;
    if (s->capture->spoiled_by.empty()) s->capture->spoiled_by = call;
    report(cudaErrorStreamCaptureUnsupported,
           std::string(call) +
               " during a stream capture, which forbids it: the capture is invalidated");
    return false;
  }
  return true;
}

void set_device_memory(size_t bytes) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  d.capacity = bytes;
}

size_t device_memory_in_use() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  return d.in_use;
}

bool launch_on(CUstream_st* stream, dim3 grid, dim3 block, size_t dynamic_smem,
               std::function<void()> body) {
  if (!launch_config_valid(grid, block, dynamic_smem)) return false;
  return enqueue(stream, "a kernel launch", [grid, block, dynamic_smem, body = std::move(body)] {
           launch(grid, block, dynamic_smem, body);
         }) == cudaSuccess;
}

}  // namespace cnnk_sim

using cnnk_sim::device;
using cnnk_sim::fail;

// ---- Device ---------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) {
  return dev == 0 ? cudaSuccess
                  : fail(cudaErrorInvalidDevice,
                         "cudaSetDevice(" + std::to_string(dev) + "): the simulator has device 0");
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice, "no simulated device " + std::to_string(dev));
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "cnnk_sim (simulated, compute capability 9.0)");
  {
    std::lock_guard<std::mutex> lock(device().mutex);
    prop->totalGlobalMem = device().capacity;
  }
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->l2CacheSize = cnnk_sim::kL2Bytes;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice, "no simulated device " + std::to_string(dev));
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = 0;
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = 132;
      return cudaSuccess;
    case cudaDevAttrL2CacheSize:
      *value = cnnk_sim::kL2Bytes;
      return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "an attribute the simulator does not know");
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = 12080;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 12080;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  // Work runs when it is issued; only a capture can make this call wrong.
  return cnnk_sim::capture_allows("cudaDeviceSynchronize") ? cudaSuccess
                                                           : cudaErrorStreamCaptureUnsupported;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = cnnk_sim::t_last_error;
  cnnk_sim::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return cnnk_sim::t_last_error; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver:
      return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoKernelImageForDevice:
      return "no kernel image is available for execution on the device";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure (see the simulator's message)";
    case cudaErrorNotSupported:
      return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define CNNK_SIM_NAME(e) \
  case e:                \
    return #e;
    CNNK_SIM_NAME(cudaSuccess)
    CNNK_SIM_NAME(cudaErrorInvalidValue)
    CNNK_SIM_NAME(cudaErrorMemoryAllocation)
    CNNK_SIM_NAME(cudaErrorInvalidConfiguration)
    CNNK_SIM_NAME(cudaErrorInvalidDevicePointer)
    CNNK_SIM_NAME(cudaErrorInvalidMemcpyDirection)
    CNNK_SIM_NAME(cudaErrorInsufficientDriver)
    CNNK_SIM_NAME(cudaErrorNoKernelImageForDevice)
    CNNK_SIM_NAME(cudaErrorInvalidDevice)
    CNNK_SIM_NAME(cudaErrorInvalidResourceHandle)
    CNNK_SIM_NAME(cudaErrorNotReady)
    CNNK_SIM_NAME(cudaErrorLaunchFailure)
    CNNK_SIM_NAME(cudaErrorNotSupported)
    CNNK_SIM_NAME(cudaErrorStreamCaptureUnsupported)
    CNNK_SIM_NAME(cudaErrorStreamCaptureInvalidated)
    CNNK_SIM_NAME(cudaErrorStreamCaptureUnmatched)
    CNNK_SIM_NAME(cudaErrorStreamCaptureWrongThread)
#undef CNNK_SIM_NAME
  }
  return "cudaErrorUnknown";
}

// ---- Memory ---------------------------------------------------------------------------

// New memory holds NaN bytes: a kernel that reads what nothing wrote shows it. The block is
// exactly the size asked for, so an overrun is an AddressSanitizer finding.
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  if (!cnnk_sim::capture_allows("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
  if (bytes == 0) return cudaSuccess;
  auto& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    if (bytes > d.capacity - d.in_use) {
      cnnk_sim::t_last_error = cudaErrorMemoryAllocation;
      return cudaErrorMemoryAllocation;  // not worth a message: callers report it
    }
  }
  void* p = nullptr;
  if (posix_memalign(&p, cnnk_sim::kAlignment, bytes) != 0)
    return fail(cudaErrorMemoryAllocation, "the host could not back a device allocation");
  std::memset(p, 0xff, bytes);
  std::lock_guard<std::mutex> lock(d.mutex);
  d.blocks[static_cast<const char*>(p)] = bytes;
  d.in_use += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!cnnk_sim::capture_allows("cudaFree")) return cudaErrorStreamCaptureUnsupported;
  if (!ptr) return cudaSuccess;
  auto& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    auto it = d.blocks.find(static_cast<const char*>(ptr));
    if (it == d.blocks.end()) {
      char where[32];
      std::snprintf(where, sizeof where, "%p", ptr);
      return fail(cudaErrorInvalidValue, std::string("cudaFree(") + where +
                                             "): not a live cudaMalloc block (freed twice?)");
    }
    d.in_use -= it->second;
    d.blocks.erase(it);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  *free_bytes = d.capacity - d.in_use;
  *total_bytes = d.capacity;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (!cnnk_sim::capture_allows("cudaMemcpy")) return cudaErrorStreamCaptureUnsupported;
  std::string bad;
  {
    std::lock_guard<std::mutex> lock(device().mutex);
    bad = cnnk_sim::direction_error(device(), dst, src, bytes, kind);
  }
  if (!bad.empty()) return fail(cudaErrorInvalidValue, "cudaMemcpy: " + bad);
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  std::string bad;
  bool host_side = false;
  {
    std::lock_guard<std::mutex> lock(device().mutex);
    bad = cnnk_sim::direction_error(device(), dst, src, bytes, kind);
    host_side = !cnnk_sim::device_range(device(), dst, bytes) ||
                !cnnk_sim::device_range(device(), src, bytes);
  }
  if (!bad.empty()) return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: " + bad);
  // A graph cannot hold a copy from or to pageable host memory (every host buffer here).
  if (host_side && !cnnk_sim::capture_allows("a cudaMemcpyAsync to or from host memory", stream))
    return cudaErrorStreamCaptureUnsupported;
  return cnnk_sim::enqueue(stream, "cudaMemcpyAsync", [dst, src, bytes] {
    if (bytes) std::memmove(dst, src, bytes);
  });
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (!cnnk_sim::capture_allows("cudaMemset")) return cudaErrorStreamCaptureUnsupported;
  if (!cnnk_sim::is_device_memory(ptr, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemset of memory that is not the device's");
  if (bytes) std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (!cnnk_sim::is_device_memory(ptr, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemsetAsync of memory that is not the device's");
  return cnnk_sim::enqueue(stream, "cudaMemsetAsync", [ptr, value, bytes] {
    if (bytes) std::memset(ptr, value, bytes);
  });
}

// ---- Streams --------------------------------------------------------------------------

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  *stream = new CUstream_st;
  d.streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!stream || !d.streams.count(stream))
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of a stream that is not live");
  if (stream->capture)
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamDestroy during its capture");
  d.streams.erase(stream);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(device().mutex);
    if (!cnnk_sim::live_stream(device(), stream))
      return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize of a stream not live");
  }
  return cnnk_sim::capture_allows("cudaStreamSynchronize", stream)
             ? cudaSuccess
             : cudaErrorStreamCaptureUnsupported;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!stream) return fail(cudaErrorStreamCaptureUnsupported, "the legacy stream cannot capture");
  if (!d.streams.count(stream))
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamBeginCapture of a stream not live");
  if (stream->capture)
    return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture on a stream already capturing");
  stream->capture = std::make_unique<cnnk_sim::Capture>();
  stream->capture->mode = mode;
  stream->capture->owner = std::this_thread::get_id();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!stream || !d.streams.count(stream) || !stream->capture)
    return fail(cudaErrorStreamCaptureUnmatched, "cudaStreamEndCapture without a capture");
  cnnk_sim::Capture& c = *stream->capture;
  if (c.mode != cudaStreamCaptureModeRelaxed && c.owner != std::this_thread::get_id())
    return fail(cudaErrorStreamCaptureWrongThread, "a capture ended by another thread");
  std::unique_ptr<cnnk_sim::Capture> done = std::move(stream->capture);
  if (!done->spoiled_by.empty()) return cudaErrorStreamCaptureInvalidated;
  *graph = new CUgraph_st{std::move(done->ops), {}};
  for (const cnnk_sim::Op& op : (*graph)->ops)
    (*graph)->nodes.push_back({cnnk_sim::node_type(op.what)});
  return cudaSuccess;
}

// ---- Events ---------------------------------------------------------------------------

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord of a null event");
  return cnnk_sim::enqueue(stream, "cudaEventRecord", [event] {
    event->when = std::chrono::steady_clock::now();
    event->recorded = true;
  });
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize of a null event");
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end || !start->recorded || !end->recorded)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of an event not recorded");
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// ---- Graphs ---------------------------------------------------------------------------

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate of a null graph");
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* count) {
  if (!graph || !count) return fail(cudaErrorInvalidValue, "cudaGraphGetNodes of a null graph");
  if (!nodes) {
    *count = graph->nodes.size();
    return cudaSuccess;
  }
  const size_t n = std::min(*count, graph->nodes.size());
  for (size_t i = 0; i < n; ++i) nodes[i] = &graph->nodes[i];
  *count = n;
  return cudaSuccess;
}
cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, cudaGraphNodeType* type) {
  if (!node || !type) return fail(cudaErrorInvalidValue, "cudaGraphNodeGetType of a null node");
  *type = node->type;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
// The graph's work, in the order it was captured, in `stream`'s order. A node that fails
// fails the launch when it runs at once (the simulator's message names the node).
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch of a null graph");
  auto failed = std::make_shared<bool>(false);
  const cudaError_t queued =
      cnnk_sim::enqueue(stream, "cudaGraphLaunch", [ops = exec->ops, failed] {
        if (cnnk_sim::run_ops(ops) != cudaSuccess) *failed = true;
      });
  if (queued != cudaSuccess) return queued;
  return *failed ? cudaErrorLaunchFailure : cudaSuccess;
}

// ---- Profiler range (cuda_profiler_api.h): nothing to profile here -----------------------

cudaError_t cudaProfilerStart() { return cudaSuccess; }
cudaError_t cudaProfilerStop() { return cudaSuccess; }
