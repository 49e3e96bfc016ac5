// `mproxy paths HOST`: every executable on the remote PATH, one
// "name<TAB>path" line each, the first occurrence on PATH winning.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <sstream>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(60);

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

// What `mproxy paths` should print for `path_value`, worked out here: the
// remote side shares this machine's file system outside the fixture's own
// directory. A name counts when it is a regular file (after symlinks) with an
// execute bit; within a directory names come in byte order.
std::string ExpectedListing(const std::string& path_value) {
  std::string out;
  std::set<std::string> seen;
  for (const std::string& dir : Split(path_value, ':')) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      names.push_back(e.path().filename());
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      if (seen.count(name) != 0) continue;
      std::string path = dir + "/" + name;
      struct stat st;
      if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
        continue;
      }
      seen.insert(name);
      out += name + "\t" + path + "\n";
    }
  }
  return out;
}

TEST_CASE("mproxy paths lists the remote PATH's commands, first occurrence winning", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());

  auto env = Run(ExecArgv(*f, {"printenv", "PATH"}), kLimit);
  REQUIRE(env.Status() == "exit 0");
  const std::string remote_path = env.out.substr(0, env.out.find('\n'));
  INFO("remote PATH=" << remote_path);
  REQUIRE(!remote_path.empty());

  auto r = Run(PathsArgv(*f), kLimit);
  CHECK(r.Status() == "exit 0");
  CHECK(r.err == "");
  REQUIRE(!r.out.empty());
  REQUIRE(r.out.back() == '\n');

  // Shape: name<TAB>path per line, every name once, path ending in the name.
  std::set<std::string> names;
  std::string sh_path;
  for (const std::string& line : Split(r.out, '\n')) {
    INFO("line: " << line);
    REQUIRE(CountOf(line, "\t") == 1);
    const std::string name = line.substr(0, line.find('\t'));
    const std::string path = line.substr(line.find('\t') + 1);
    CHECK(names.insert(name).second);
    CHECK(path.size() > name.size());
    CHECK(path.compare(path.size() - name.size() - 1, std::string::npos, "/" + name) == 0);
    if (name == "sh") sh_path = path;
  }

  // sh is there, from the first PATH directory that has one.
  std::string first_sh;
  for (const std::string& dir : Split(remote_path, ':')) {
    if (access((dir + "/sh").c_str(), X_OK) == 0) {
      first_sh = dir + "/sh";
      break;
    }
  }
  REQUIRE(!first_sh.empty());
  CHECK(sh_path == first_sh);

  // And the whole listing, line for line.
  CHECK(r.out == ExpectedListing(remote_path));
}

}  // namespace
}  // namespace mproxy::e2e
