// The part of the C library mproxy-shim uses, as raw Linux x86-64 syscalls,
// and the process entry point. The shim runs once per remote command, and
// glibc's start-up alone (CPU feature and cache detection: dozens of CPUID
// instructions, each a VM exit on a virtual machine) cost it about 0.3 ms of
// its 0.45 ms; without it the shim starts like any static program.
//
// Only mproxy-shim links this, and only when built without sanitizers or
// fuzzing (shim/CMakeLists.txt); every other build, the tests' included,
// uses glibc. The functions keep the glibc headers' declarations, so the
// shim's code is the same either way, and a function the shim starts using
// without a definition here fails the link instead of running. Single
// threaded: errno is one global and the heap takes no lock.
#include <bits/functexcept.h>  // the std::__throw_* declarations
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "shim/nolibc/errno_text.h"
#include "shim/nolibc/heap.h"
#include "shim/nolibc/termios_abi.h"

#if !defined(__x86_64__) || !defined(__linux__)
#error "shim/nolibc/libc_x86_64.cc is for Linux on x86-64 only"
#endif

namespace nolibc = mproxy::shim::nolibc;

// glibc reserves the first two realtime signals for its threads; the shim
// numbers them the way the glibc-linked broker does.
constexpr int kSigRtMin = 34;
constexpr int kSigRtMax = 64;
constexpr unsigned long kSaRestorer = 0x04000000;  // not in the glibc headers

extern "C" {
char** environ = nullptr;
}

namespace {

int g_errno = 0;
const unsigned long* g_auxv = nullptr;

long Syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

// A raw syscall result as the C library returns it: -1 with errno set.
long Check(long ret) {
  if (ret < 0 && ret > -4096) {
    g_errno = static_cast<int>(-ret);
    return -1;
  }
  return ret;
}

template <typename T>
long P(T* pointer) {
  return reinterpret_cast<long>(pointer);
}

[[noreturn]] void ExitGroup(int code) {
  for (;;) Syscall(SYS_exit_group, code);
}

void Say(const char* text) { Syscall(SYS_write, 2, P(text), static_cast<long>(strlen(text))); }

// `value` in decimal, written to end just before `end`; returns its start.
char* Decimal(unsigned value, char* end) {
  do {
    *--end = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return end;
}

[[noreturn]] void Die(const char* what) {
  Say("mproxy-shim: ");
  Say(what);
  Say("\n");
  ExitGroup(255);
}

void* MapPages(size_t bytes) {
  long p = Syscall(SYS_mmap, 0, static_cast<long>(bytes), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p < 0 && p > -4096 ? nullptr : reinterpret_cast<void*>(p);
}

void UnmapPages(void* pages, size_t bytes) {
  Syscall(SYS_munmap, P(pages), static_cast<long>(bytes));
}

constinit nolibc::Heap g_heap({MapPages, UnmapPages});

// The kernel's struct sigaction for rt_sigaction (8-byte signal set).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

}  // namespace

// Signal handlers return through this: the kernel needs a restorer.
extern "C" void mproxy_nolibc_restore_rt();
asm(".text\n"
    ".align 16\n"
    "mproxy_nolibc_restore_rt:\n"
    "  mov $15, %rax\n"  // SYS_rt_sigreturn
    "  syscall\n"
    "  hlt\n");

// The entry point: the kernel leaves argc, argv, envp and auxv on the stack.
extern "C" [[noreturn]] void mproxy_nolibc_start(long* stack);
asm(".text\n"
    ".global _start\n"
    ".type _start, @function\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call mproxy_nolibc_start\n"
    "  hlt\n");

// main() under another name: C++ forbids calling main itself.
extern "C" int mproxy_nolibc_main(int argc, char** argv, char** envp) asm("main");

extern "C" {
extern void (*__preinit_array_start[])();
extern void (*__preinit_array_end[])();
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

void mproxy_nolibc_start(long* stack) {
  int argc = static_cast<int>(stack[0]);
  char** argv = reinterpret_cast<char**>(stack + 1);
  environ = argv + argc + 1;
  char** e = environ;
  while (*e != nullptr) ++e;
  g_auxv = reinterpret_cast<const unsigned long*>(e + 1);
  for (auto** f = __preinit_array_start; f != __preinit_array_end; ++f) (**f)();
  for (auto** f = __init_array_start; f != __init_array_end; ++f) (**f)();
  ExitGroup(mproxy_nolibc_main(argc, argv, environ));
}

// ---- errno, exit, abort, assert

int* __errno_location() noexcept { return &g_errno; }

void _exit(int status) { ExitGroup(status); }

void abort() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGABRT);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  signal(SIGABRT, SIG_DFL);
  raise(SIGABRT);
  ExitGroup(127);
}

// <assert.h> declares it only without NDEBUG.
[[noreturn]] void __assert_fail(const char* expr, const char* file, unsigned int line,
                                const char* function) noexcept;
void __assert_fail(const char* expr, const char* file, unsigned int line,
                   const char* function) noexcept {
  char number[16];
  number[sizeof number - 1] = '\0';
  Say("mproxy-shim: ");
  Say(file);
  Say(":");
  Say(Decimal(line, number + sizeof number - 1));
  Say(": ");
  Say(function);
  Say(": Assertion `");
  Say(expr);
  Say("' failed.\n");
  abort();
}

// ---- memory and strings

void* malloc(size_t bytes) noexcept {
  void* p = g_heap.Allocate(bytes);
  if (p == nullptr) g_errno = ENOMEM;
  return p;
}

void free(void* block) noexcept { g_heap.Free(block); }

void* memcpy(void* dest, const void* src, size_t n) noexcept {
  void* d = dest;
  asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
  return dest;
}

void* memmove(void* dest, const void* src, size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dest);
  const auto* s = static_cast<const unsigned char*>(src);
  if (d <= s || d >= s + n) return memcpy(dest, src, n);
  d += n - 1;
  s += n - 1;
  asm volatile("std\n rep movsb\n cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return dest;
}

void* memset(void* dest, int c, size_t n) noexcept {
  void* d = dest;
  asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return dest;
}

int memcmp(const void* a, const void* b, size_t n) noexcept {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

// <cstring> declares memchr as two C++ overloads; the C symbol is this.
void* CMemchr(const void* s, int c, size_t n) noexcept asm("memchr");
void* CMemchr(const void* s, int c, size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(s);
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == static_cast<unsigned char>(c)) return const_cast<unsigned char*>(p + i);
  }
  return nullptr;
}

size_t strlen(const char* s) noexcept {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

char* strerror(int err) noexcept {
  if (const char* text = nolibc::ErrnoText(err)) return const_cast<char*>(text);
  static char unknown[32] = "Unknown error ";
  char digits[12];
  char* end = digits + sizeof digits;
  char* d = Decimal(err < 0 ? 0u - static_cast<unsigned>(err) : static_cast<unsigned>(err), end);
  char* p = unknown + 14;
  if (err < 0) *p++ = '-';
  while (d < end) *p++ = *d++;
  *p = '\0';
  return unknown;
}

char* getenv(const char* name) noexcept {
  size_t len = strlen(name);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (memcmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  }
  return nullptr;
}

unsigned long getauxval(unsigned long type) noexcept {
  for (const unsigned long* a = g_auxv; a != nullptr && a[0] != AT_NULL; a += 2) {
    if (a[0] == type) return a[1];
  }
  g_errno = ENOENT;
  return 0;
}

// ---- files and processes

ssize_t read(int fd, void* buf, size_t n) {
  return Check(Syscall(SYS_read, fd, P(buf), static_cast<long>(n)));
}

ssize_t write(int fd, const void* buf, size_t n) {
  return Check(Syscall(SYS_write, fd, P(buf), static_cast<long>(n)));
}

int close(int fd) { return static_cast<int>(Check(Syscall(SYS_close, fd))); }

int open(const char* path, int flags, ...) {
  long mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, int);
    va_end(ap);
  }
  return static_cast<int>(Check(Syscall(SYS_openat, AT_FDCWD, P(path), flags, mode)));
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);  // unused by the commands that take none
  va_end(ap);
  return static_cast<int>(Check(Syscall(SYS_fcntl, fd, cmd, arg)));
}

int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return static_cast<int>(Check(Syscall(SYS_ioctl, fd, static_cast<long>(request), P(arg))));
}

int pipe2(int fds[2], int flags) noexcept {
  return static_cast<int>(Check(Syscall(SYS_pipe2, P(fds), flags)));
}

int poll(struct pollfd* fds, nfds_t n, int timeout) {
  return static_cast<int>(Check(Syscall(SYS_poll, P(fds), static_cast<long>(n), timeout)));
}

int fstat(int fd, struct stat* st) noexcept {
  return static_cast<int>(Check(Syscall(SYS_fstat, fd, P(st))));
}

ssize_t getdents64(int fd, void* buf, size_t n) noexcept {
  return Check(Syscall(SYS_getdents64, fd, P(buf), static_cast<long>(n)));
}

char* getcwd(char* buf, size_t size) noexcept {
  char* own = nullptr;
  if (buf == nullptr) {
    if (size == 0) size = 4096;  // the kernel's limit
    buf = own = static_cast<char*>(malloc(size));
    if (buf == nullptr) return nullptr;
  }
  long n = Check(Syscall(SYS_getcwd, P(buf), static_cast<long>(size)));
  // Outside our root the kernel answers "(unreachable)/...": not a path.
  if (n > 0 && buf[0] != '/') {
    g_errno = ENOENT;
    n = -1;
  }
  if (n < 0) {
    free(own);
    return nullptr;
  }
  return buf;
}

int getrlimit(__rlimit_resource_t resource, struct rlimit* limit) noexcept {
  return static_cast<int>(Check(Syscall(SYS_prlimit64, 0, resource, 0, P(limit))));
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit* limit) noexcept {
  return static_cast<int>(Check(Syscall(SYS_prlimit64, 0, resource, P(limit), 0)));
}

pid_t getpgrp() noexcept { return static_cast<pid_t>(Syscall(SYS_getpgrp)); }

pid_t getsid(pid_t pid) noexcept { return static_cast<pid_t>(Check(Syscall(SYS_getsid, pid))); }

// ---- sockets

int socket(int domain, int type, int protocol) noexcept {
  return static_cast<int>(Check(Syscall(SYS_socket, domain, type, protocol)));
}

int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  return static_cast<int>(Check(Syscall(SYS_connect, fd, P(addr), len)));
}

int bind(int fd, const struct sockaddr* addr, socklen_t len) noexcept {
  return static_cast<int>(Check(Syscall(SYS_bind, fd, P(addr), len)));
}

int listen(int fd, int backlog) noexcept {
  return static_cast<int>(Check(Syscall(SYS_listen, fd, backlog)));
}

int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return static_cast<int>(Check(Syscall(SYS_accept4, fd, P(addr), P(len), flags)));
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  return Check(Syscall(SYS_sendmsg, fd, P(msg), flags));
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  return Check(Syscall(SYS_recvmsg, fd, P(msg), flags));
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* len) noexcept {
  return static_cast<int>(Check(Syscall(SYS_getsockopt, fd, level, name, P(value), P(len))));
}

// ---- signals

int __libc_current_sigrtmin() noexcept { return kSigRtMin; }
int __libc_current_sigrtmax() noexcept { return kSigRtMax; }

int sigemptyset(sigset_t* set) noexcept {
  memset(set, 0, sizeof *set);
  return 0;
}

int sigaddset(sigset_t* set, int signo) noexcept {
  if (signo <= 0 || signo > kSigRtMax) {
    g_errno = EINVAL;
    return -1;
  }
  set->__val[(signo - 1) / 64] |= 1UL << ((signo - 1) % 64);
  return 0;
}

int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  if (old != nullptr) sigemptyset(old);
  return static_cast<int>(Check(Syscall(SYS_rt_sigprocmask, how, P(set), P(old), 8)));
}

int sigaction(int signo, const struct sigaction* action, struct sigaction* old) noexcept {
  KernelSigaction k{};
  if (action != nullptr) {
    k.handler = action->sa_handler;
    k.flags = static_cast<unsigned long>(action->sa_flags) | kSaRestorer;
    k.restorer = mproxy_nolibc_restore_rt;
    k.mask = action->sa_mask.__val[0];
  }
  KernelSigaction k_old{};
  long r = Check(Syscall(SYS_rt_sigaction, signo, action != nullptr ? P(&k) : 0,
                         old != nullptr ? P(&k_old) : 0, 8));
  if (r == 0 && old != nullptr) {
    memset(old, 0, sizeof *old);
    old->sa_handler = k_old.handler;
    old->sa_flags = static_cast<int>(k_old.flags & ~kSaRestorer);
    old->sa_mask.__val[0] = k_old.mask;
  }
  return static_cast<int>(r);
}

sighandler_t signal(int signo, sighandler_t handler) noexcept {
  struct sigaction action {};
  action.sa_handler = handler;
  action.sa_flags = SA_RESTART;
  struct sigaction old {};
  if (sigaction(signo, &action, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

int raise(int signo) noexcept {
  long pid = Syscall(SYS_getpid);
  return static_cast<int>(Check(Syscall(SYS_tgkill, pid, pid, signo)));
}

// ---- terminals

int tcgetattr(int fd, struct termios* t) noexcept {
  nolibc::KernelTermios k;
  if (ioctl(fd, TCGETS, &k) != 0) return -1;
  nolibc::FromKernel(k, t);
  return 0;
}

int tcsetattr(int fd, int when, const struct termios* t) noexcept {
  unsigned long request;
  switch (when) {
    case TCSANOW:
      request = TCSETS;
      break;
    case TCSADRAIN:
      request = TCSETSW;
      break;
    case TCSAFLUSH:
      request = TCSETSF;
      break;
    default:
      g_errno = EINVAL;
      return -1;
  }
  nolibc::KernelTermios k = nolibc::ToKernel(*t);
  return ioctl(fd, request, &k);
}

void cfmakeraw(struct termios* t) noexcept { nolibc::MakeRaw(t); }

int isatty(int fd) noexcept {
  nolibc::KernelTermios k;
  return ioctl(fd, TCGETS, &k) == 0 ? 1 : 0;
}

pid_t tcgetpgrp(int fd) noexcept {
  pid_t pgrp;
  return ioctl(fd, TIOCGPGRP, &pgrp) == 0 ? pgrp : -1;
}

pid_t tcgetsid(int fd) noexcept {
  pid_t sid;
  return ioctl(fd, TIOCGSID, &sid) == 0 ? sid : -1;
}

}  // extern "C"

// ---- C++ runtime: allocation, and the throws that -fno-exceptions turns
// into these calls (the shim never expects them: out of memory or a bug).

void* operator new(size_t bytes) {
  void* p = g_heap.Allocate(bytes);
  if (p == nullptr) Die("out of memory");
  return p;
}
void* operator new[](size_t bytes) { return operator new(bytes); }
void operator delete(void* p) noexcept { g_heap.Free(p); }
void operator delete[](void* p) noexcept { g_heap.Free(p); }
void operator delete(void* p, size_t) noexcept { g_heap.Free(p); }
void operator delete[](void* p, size_t) noexcept { g_heap.Free(p); }

namespace std {
void __throw_bad_alloc() { Die("out of memory"); }
void __throw_bad_array_new_length() { Die("out of memory (array length)"); }
void __throw_length_error(const char* what) { Die(what); }
void __throw_logic_error(const char* what) { Die(what); }
void __throw_out_of_range_fmt(const char* what, ...) { Die(what); }
}  // namespace std
