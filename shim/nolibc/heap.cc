// Every block starts 16 bytes after a header holding its size, with the low
// bit set for blocks that have their own mapping; so Free() needs no lookup.
#include "shim/nolibc/heap.h"

#include <cstdint>

namespace mproxy::shim::nolibc {
namespace {

constexpr size_t kHeader = 16;
constexpr size_t kSmallest = 16;
constexpr size_t kPage = 4096;
constexpr size_t kOwnMapping = 1;

size_t& HeaderOf(const void* block) {
  return *reinterpret_cast<size_t*>(reinterpret_cast<uintptr_t>(block) - kHeader);
}

// The smallest class holding `bytes`: class k holds 16 << k bytes.
int ClassFor(size_t bytes) {
  int k = 0;
  while ((kSmallest << k) < bytes) ++k;
  return k;
}

}  // namespace

void* Heap::Allocate(size_t bytes) {
  if (bytes > kLargestClass) {
    if (bytes > SIZE_MAX / 2) return nullptr;
    size_t total = (bytes + kHeader + kPage - 1) & ~(kPage - 1);
    char* pages = static_cast<char*>(source_.map(total));
    if (pages == nullptr) return nullptr;
    *reinterpret_cast<size_t*>(pages) = total | kOwnMapping;
    return pages + kHeader;
  }
  int k = ClassFor(bytes);
  if (FreeBlock* block = free_[k]) {
    free_[k] = block->next;
    return block;
  }
  size_t size = kSmallest << k;
  if (chunk_left_ < kHeader + size) {
    // The rest of the old chunk is abandoned: at most one block's worth.
    chunk_ = static_cast<char*>(source_.map(kChunk));
    if (chunk_ == nullptr) {
      chunk_left_ = 0;
      return nullptr;
    }
    chunk_left_ = kChunk;
  }
  char* block = chunk_ + kHeader;
  chunk_ += kHeader + size;
  chunk_left_ -= kHeader + size;
  HeaderOf(block) = size;
  return block;
}

void Heap::Free(void* block) {
  if (block == nullptr) return;
  size_t header = HeaderOf(block);
  if ((header & kOwnMapping) != 0) {
    source_.unmap(static_cast<char*>(block) - kHeader, header & ~kOwnMapping);
    return;
  }
  int k = ClassFor(header);
  auto* free_block = static_cast<FreeBlock*>(block);
  free_block->next = free_[k];
  free_[k] = free_block;
}

size_t Heap::UsableSize(const void* block) {
  size_t header = HeaderOf(block);
  if ((header & kOwnMapping) != 0) return (header & ~kOwnMapping) - kHeader;
  return header;
}

}  // namespace mproxy::shim::nolibc
