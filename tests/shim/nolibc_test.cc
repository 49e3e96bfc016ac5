// The pieces of shim/nolibc/ that replace glibc in mproxy-shim, checked
// against glibc itself: strerror texts, termios conversions on a real pty,
// cfmakeraw, and the allocator's reuse and mapping behaviour.
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "shim/nolibc/errno_text.h"
#include "shim/nolibc/heap.h"
#include "shim/nolibc/termios_abi.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::testing {
namespace {

namespace nolibc = shim::nolibc;

TEST_CASE("every errno text of the shim's own table reads as glibc's strerror", "[shim]") {
  int known = 0;
  for (int err = 1; err < 134; ++err) {
    const char* ours = nolibc::ErrnoText(err);
    if (ours == nullptr) continue;
    ++known;
    INFO("errno " << err);
    CHECK(std::string(ours) == std::strerror(err));
  }
  CHECK(known > 40);
  CHECK(nolibc::ErrnoText(0) == nullptr);
  CHECK(nolibc::ErrnoText(-1) == nullptr);
  CHECK(nolibc::ErrnoText(100000) == nullptr);
}

bool SameTermios(const termios& a, const termios& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct Pty {
  UniqueFd master;
  UniqueFd slave;
  Pty() {
    int m = -1;
    int s = -1;
    if (::openpty(&m, &s, nullptr, nullptr, nullptr) != 0) {
      Skip(std::string("openpty: ") + std::strerror(errno));
    }
    master.Reset(m);
    slave.Reset(s);
  }
};

TEST_CASE("termios from the kernel's TCGETS converts to what glibc's tcgetattr gives", "[shim]") {
  Pty pty;
  for (bool raw : {false, true}) {
    INFO((raw ? "raw" : "cooked") << " settings");
    if (raw) {
      termios t{};
      REQUIRE(::tcgetattr(pty.slave.get(), &t) == 0);
      ::cfmakeraw(&t);
      ::cfsetspeed(&t, B115200);
      REQUIRE(::tcsetattr(pty.slave.get(), TCSANOW, &t) == 0);
    }
    nolibc::KernelTermios k{};
    REQUIRE(::ioctl(pty.slave.get(), TCGETS, &k) == 0);
    termios ours{};
    nolibc::FromKernel(k, &ours);
    termios glibc{};
    REQUIRE(::tcgetattr(pty.slave.get(), &glibc) == 0);
    CHECK(SameTermios(ours, glibc));

    nolibc::KernelTermios back = nolibc::ToKernel(glibc);
    CHECK(std::memcmp(&back, &k, sizeof k) == 0);
  }
}

TEST_CASE("MakeRaw changes termios exactly as glibc's cfmakeraw", "[shim]") {
  Pty pty;
  termios start{};
  REQUIRE(::tcgetattr(pty.slave.get(), &start) == 0);
  start.c_cflag |= PARENB;  // something cfmakeraw has to clear
  termios glibc = start;
  ::cfmakeraw(&glibc);
  termios ours = start;
  nolibc::MakeRaw(&ours);
  CHECK(SameTermios(ours, glibc));
}

// A page source that counts what it maps, so a test sees reuse.
struct Counted {
  static inline int maps = 0;
  static inline int unmaps = 0;
  static inline size_t unmapped_bytes = 0;
  static void* Map(size_t bytes) {
    ++maps;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  static void Unmap(void* p, size_t bytes) {
    ++unmaps;
    unmapped_bytes += bytes;
    ::munmap(p, bytes);
  }
};

TEST_CASE("the shim's heap aligns blocks, keeps them apart and reuses freed ones", "[shim]") {
  Counted::maps = Counted::unmaps = 0;
  nolibc::Heap heap({Counted::Map, Counted::Unmap});
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (size_t size : {0, 1, 15, 16, 17, 100, 4096, 5000, 65535, 65536}) {
    auto* p = static_cast<unsigned char*>(heap.Allocate(size));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0);
    CHECK(nolibc::Heap::UsableSize(p) >= size);
    std::memset(p, static_cast<int>(blocks.size() + 1), size);
    blocks.emplace_back(p, size);
  }
  // No block overwrote another.
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t j = 0; j < blocks[i].second; ++j) {
      REQUIRE(blocks[i].first[j] == i + 1);
    }
  }
  // A freed block of a class comes back for the next request of that class.
  heap.Free(blocks[5].first);  // 100 bytes: the 128-byte class
  CHECK(heap.Allocate(120) == blocks[5].first);
  int maps_before = Counted::maps;
  for (int i = 0; i < 1000; ++i) {
    void* p = heap.Allocate(200);
    heap.Free(p);
  }
  CHECK(Counted::maps == maps_before);
  heap.Free(nullptr);
}

TEST_CASE("the shim's heap gives large blocks their own mapping and returns it", "[shim]") {
  Counted::maps = Counted::unmaps = 0;
  Counted::unmapped_bytes = 0;
  nolibc::Heap heap({Counted::Map, Counted::Unmap});
  size_t size = 3 * 1024 * 1024 + 1;
  auto* p = static_cast<char*>(heap.Allocate(size));
  REQUIRE(p != nullptr);
  CHECK(nolibc::Heap::UsableSize(p) >= size);
  p[0] = 'a';
  p[size - 1] = 'z';
  CHECK(Counted::maps == 1);
  heap.Free(p);
  CHECK(Counted::unmaps == 1);
  CHECK(Counted::unmapped_bytes >= size);
  CHECK(heap.Allocate(SIZE_MAX - 8) == nullptr);
}

TEST_CASE("the shim's heap reports out of memory instead of handing out a bad block", "[shim]") {
  nolibc::Heap heap({[](size_t) -> void* { return nullptr; }, [](void*, size_t) {}});
  CHECK(heap.Allocate(10) == nullptr);
  CHECK(heap.Allocate(1 << 20) == nullptr);
}

}  // namespace
}  // namespace mproxy::testing
