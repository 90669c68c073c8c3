// A caching allocator for device memory: blocks freed by tensors go back to a pool keyed
// by rounded size and are handed out again, so after the first step of training no
// cudaMalloc happens. Out of memory reports what was asked, what was free, and for what.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cnn::cuda {

class DeviceAllocator : public std::enable_shared_from_this<DeviceAllocator> {
 public:
  explicit DeviceAllocator(int device);
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // At least `bytes` of device memory, 256-byte aligned; `what` names the use for the
  // out-of-memory message. Throws OutOfDeviceMemory when the GPU has no room even after
  // the cache was released.
  void* allocate(size_t bytes, const std::string& what);
  void release(void* ptr);
  // Returns every cached block to the driver.
  void empty_cache();
  // While a step is captured into a CUDA graph, the graph keeps the addresses it saw: a
  // block handed out then could be handed to someone else later while the graph still
  // writes it. So allocation during a capture is refused (DeviceError naming `why`).
  void forbid_allocation(const std::string& why);
  void allow_allocation();
  // For the same reason a block that a live graph may still name (a workspace replaced by
  // a larger one) returns to the cache only when the last graph is gone: handed to a
  // tensor meanwhile, it would be overwritten by the next replay. Graphs announce
  // themselves with graph_created / graph_destroyed.
  void release_after_graphs(void* ptr);
  void graph_created();
  void graph_destroyed();

  struct Stats {
    size_t in_use = 0, cached = 0, peak = 0;
    size_t device_mallocs = 0;  // cudaMalloc calls so far
  };
  Stats stats() const;

 private:
  static size_t round_up(size_t bytes);
  void free_cache();  // with mutex_ held (or in the destructor): the cache back to the driver
  int device_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // rounded size -> block
  std::map<void*, size_t> live_;       // block -> rounded size
  Stats stats_;
  std::string forbidden_;            // non-empty while allocation is refused: why
  int graphs_ = 0;                   // live graphs
  std::vector<void*> after_graphs_;  // blocks to release when graphs_ drops to 0
};

}  // namespace cnn::cuda
