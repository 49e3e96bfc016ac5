// The shim's memory allocator when it runs without a C library: free lists
// per power-of-two size class for small blocks, a mapping each for large ones.
#pragma once

#include <cstddef>

namespace mproxy::shim::nolibc {

// Where a Heap gets its memory: whole pages, mapped and unmapped.
struct PageSource {
  void* (*map)(size_t bytes);  // nullptr when out of memory
  void (*unmap)(void* pages, size_t bytes);
};

// Owned by whoever declares it (the shim: one global, constant-initialized,
// so it works before any constructor runs). Not thread-safe: the shim has
// one thread, and its signal handler never allocates.
class Heap {
 public:
  // Blocks up to this size come from size classes and are reused after
  // Free(); larger ones get their own mapping, returned on Free().
  static constexpr size_t kLargestClass = 64 * 1024;

  explicit constexpr Heap(PageSource source) : source_(source) {}
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  // 16-byte aligned; nullptr when the page source has no more memory or
  // `bytes` is absurd.
  void* Allocate(size_t bytes);
  // `block` from Allocate() of this heap, or nullptr.
  void Free(void* block);
  // How many bytes `block` may hold (at least what was asked for).
  static size_t UsableSize(const void* block);

 private:
  static constexpr int kClasses = 13;           // 16 B .. 64 KiB
  static constexpr size_t kChunk = 256 * 1024;  // small blocks are carved from these

  struct FreeBlock {
    FreeBlock* next;
  };

  PageSource source_;
  FreeBlock* free_[kClasses] = {};
  char* chunk_ = nullptr;  // the unused rest of the current chunk
  size_t chunk_left_ = 0;
};

}  // namespace mproxy::shim::nolibc
