// TempDir.
#include "tests/support/temp_dir.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

namespace mproxy::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/mproxy-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace mproxy::testing
