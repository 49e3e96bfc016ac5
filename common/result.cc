// Error helpers that need libc.
#include "common/result.h"

#include <cstring>

namespace mproxy {

Error Error::FromErrno(const std::string& what, int sys_errno) {
  return Error(what + ": " + std::strerror(sys_errno), sys_errno);
}

}  // namespace mproxy
