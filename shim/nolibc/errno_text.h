// strerror(3)'s messages for the shim when it runs without a C library: the
// errors its syscalls can report, worded exactly as glibc words them.
#pragma once

namespace mproxy::shim::nolibc {

// The message for `err`, or nullptr for a number not in the table.
const char* ErrnoText(int err);

}  // namespace mproxy::shim::nolibc
