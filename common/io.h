// EINTR-safe blocking I/O helpers for the simple programs (shim, tests).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy {

// Writes all of `data`, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data);

// Reads exactly `len` bytes. Returns an error on EOF before `len` bytes.
Status ReadExact(int fd, void* buf, size_t len);

// Reads until EOF and returns what was read.
Result<std::string> ReadToEof(int fd);

// read(2) retried on EINTR. Returns bytes read (0 at EOF) or an error.
Result<size_t> ReadSome(int fd, void* buf, size_t len);

// pipe2(O_CLOEXEC) as a pair of UniqueFd: first is the read end.
Result<std::pair<UniqueFd, UniqueFd>> MakePipe();

}  // namespace mproxy
