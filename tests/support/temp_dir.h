// TempDir: a scratch directory for one test, removed with its contents.
#pragma once

#include <string>

namespace mproxy::testing {

// A fresh directory /tmp/mproxy-test-XXXXXX (mkdtemp; the test fails if it
// cannot be made), removed with everything in it on destruction. Owned by
// the test; not thread-safe.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mproxy::testing
