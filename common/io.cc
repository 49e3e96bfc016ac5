// EINTR-safe blocking I/O helpers.
#include "common/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace mproxy {

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("write", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Result<size_t> ReadSome(int fd, void* buf, size_t len) {
  for (;;) {
    ssize_t n = ::read(fd, buf, len);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Error::FromErrno("read", errno);
  }
}

Status ReadExact(int fd, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    auto n = ReadSome(fd, p, len);
    if (!n.ok()) return n.error();
    if (*n == 0) return Error("read: unexpected end of file");
    p += *n;
    len -= *n;
  }
  return Ok();
}

Result<std::string> ReadToEof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = ReadSome(fd, buf, sizeof buf);
    if (!n.ok()) return n.error();
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

Result<std::pair<UniqueFd, UniqueFd>> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::FromErrno("pipe2", errno);
  return std::pair<UniqueFd, UniqueFd>(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

}  // namespace mproxy
