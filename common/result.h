// Result<T>: a value or an Error carrying context, for every operation that
// does I/O or reads peer data. Modelled on leveldb's Status, plus a value.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace mproxy {

// An error: a human-readable message with context ("frame: length 9000000
// exceeds maximum 1048576") and, when it came from a syscall, the errno.
class Error {
 public:
  Error() = default;
  explicit Error(std::string message, int sys_errno = 0)
      : message_(std::move(message)), errno_(sys_errno) {}

  // An error from a failed syscall: "<what>: <strerror(errno)>".
  static Error FromErrno(const std::string& what, int sys_errno);

  const std::string& message() const { return message_; }
  int sys_errno() const { return errno_; }

  // Returns a copy with "<context>: " prepended to the message.
  Error Wrap(const std::string& context) const {
    return Error(context + ": " + message_, errno_);
  }

 private:
  std::string message_;
  int errno_ = 0;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return Status(); }

}  // namespace mproxy
