// PATH splitting, enumeration and lookup on a scratch directory tree.
#include "agent/path_query.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

namespace mproxy::agent {
namespace {

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/agent-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string Add(const std::string& rel, mode_t mode, const std::string& body = "#!/bin/sh\n") {
    std::string p = path_ + "/" + rel;
    std::ofstream(p) << body;
    chmod(p.c_str(), mode);
    return p;
  }
  std::string Mkdir(const std::string& rel) {
    std::string p = path_ + "/" + rel;
    mkdir(p.c_str(), 0755);
    return p;
  }

 private:
  std::string path_;
};

TEST_CASE("PATH splits at colons and empty parts mean the current directory", "[agent]") {
  CHECK(SplitPath("/a:/b") == std::vector<std::string>{"/a", "/b"});
  CHECK(SplitPath("/a::/b:") == std::vector<std::string>{"/a", ".", "/b", "."});
  CHECK(SplitPath("") == std::vector<std::string>{"."});
}

TEST_CASE("ListExecutables keeps the first occurrence of each name", "[agent]") {
  TempDir t;
  std::string d1 = t.Mkdir("d1");
  std::string d2 = t.Mkdir("d2");
  t.Add("d1/tool", 0755, "one");
  t.Add("d2/tool", 0755, "two two");
  t.Add("d2/other", 0700);
  t.Add("d1/plain", 0644);
  t.Mkdir("d1/subdir");
  REQUIRE(symlink((d2 + "/other").c_str(), (d1 + "/link").c_str()) == 0);
  REQUIRE(symlink("/nonexistent", (d1 + "/dangling").c_str()) == 0);

  auto entries = ListExecutables({d1, d2, t.path() + "/missing"});
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].name == "link");
  CHECK(entries[0].path == d1 + "/link");
  CHECK(entries[1].name == "tool");
  CHECK(entries[1].path == d1 + "/tool");
  CHECK(entries[1].size == 3);
  CHECK((entries[1].mode & 0777) == 0755);
  CHECK(S_ISREG(entries[1].mode));
  CHECK(entries[1].mtime > 0);
  CHECK(entries[2].name == "other");
  CHECK(entries[2].path == d2 + "/other");
}

TEST_CASE("FindExecutable searches PATH in order and skips non-executables", "[agent]") {
  TempDir t;
  std::string d1 = t.Mkdir("d1");
  std::string d2 = t.Mkdir("d2");
  t.Add("d1/tool", 0644);
  t.Add("d2/tool", 0755);
  CHECK(FindExecutable("tool", d1 + ":" + d2, "") == d2 + "/tool");
  CHECK(FindExecutable("nope", d1 + ":" + d2, "").empty());
  // Relative PATH entries are relative to the child's cwd.
  CHECK(FindExecutable("tool", "d2", t.path()) == t.path() + "/d2/tool");
}

}  // namespace
}  // namespace mproxy::agent
