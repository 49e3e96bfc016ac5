// Zero-install deployment seen from outside: the first `mproxy exec` to a
// host uploads the agent bundle into its content-addressed cache, later ones
// reuse it, and two first runs at once both succeed with one clean install.
//
// Each case logs in as its own account (created by the fixture) so that
// emptying that account's cache cannot disturb other tests running in
// parallel as mproxy-test.
#include <pwd.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(120);

std::unique_ptr<SshdFixture> StartAs(const std::string& user) {
  if (geteuid() != 0) testing::Skip("needs root to log in as a dedicated account " + user);
  testing::SshdOptions o;
  o.user = user;
  return SshdFixture::StartOrSkip(o);
}

std::string CacheDir(const SshdFixture& f) {
  struct passwd* pw = getpwnam(f.user().c_str());
  REQUIRE(pw != nullptr);
  return std::string(pw->pw_dir) + "/.cache/mproxy";
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_CASE("a fresh host gets the agent uploaded once, and later runs reuse it", "[e2e][deploy]") {
  auto f = StartAs("mproxy-e2e-fresh");
  INFO("sshd log:\n" << f->LogTail());
  const std::string cache = CacheDir(*f);
  fs::remove_all(cache);
  const std::string hash = BundleHash();
  const std::string agent_dir = cache + "/agent/" + hash;

  auto first = Run(ExecArgv(*f, {"echo", "first"}, {}, {"--verbose"}), kLimit);
  INFO("first run stderr:\n" << first.err);
  REQUIRE(first.Status() == "exit 0");
  CHECK(first.out == "first\n");
  CHECK(CountOf(first.err, "uploading agent " + hash.substr(0, 12)) == 1);
  CHECK(List(cache + "/agent") == std::vector<std::string>{hash});
  struct stat before;
  REQUIRE(stat((agent_dir + "/mproxy-agent").c_str(), &before) == 0);
  CHECK((before.st_mode & S_IXUSR) != 0);
  // The bundle's own MANIFEST, byte for byte.
  CHECK(ReadFile(agent_dir + "/MANIFEST") == ReadFile(BundleDir() + "/tree/MANIFEST"));

  auto second = Run(ExecArgv(*f, {"echo", "second"}, {}, {"--verbose"}), kLimit);
  INFO("second run stderr:\n" << second.err);
  REQUIRE(second.Status() == "exit 0");
  CHECK(second.out == "second\n");
  CHECK(CountOf(second.err, "uploading agent") == 0);
  struct stat after;
  REQUIRE(stat((agent_dir + "/mproxy-agent").c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(List(cache + "/agent") == std::vector<std::string>{hash});
}

TEST_CASE("two first runs at once both deploy safely and leave one clean install",
          "[e2e][deploy]") {
  auto f = StartAs("mproxy-e2e-race");
  INFO("sshd log:\n" << f->LogTail());
  const std::string cache = CacheDir(*f);
  const std::string hash = BundleHash();

  // A few rounds make it likely that the two uploads overlap at least once.
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    fs::remove_all(cache);
    Child::Options a, b;
    a.argv = ExecArgv(*f, {"echo", "a"}, {}, {"--verbose"});
    b.argv = ExecArgv(*f, {"echo", "b"}, {}, {"--verbose"});
    a.stdin_kind = b.stdin_kind = Child::StdinKind::kFile;
    auto ca = Child::Spawn(a);
    auto cb = Child::Spawn(b);
    auto ra = ca->Communicate("", kLimit);
    auto rb = cb->Communicate("", kLimit);
    INFO("a stderr:\n" << ra.err << "b stderr:\n" << rb.err);
    CHECK(ra.Status() == "exit 0");
    CHECK(ra.out == "a\n");
    CHECK(rb.Status() == "exit 0");
    CHECK(rb.out == "b\n");
    // The cache was empty, so at least one of them uploaded (usually both).
    CHECK(CountOf(ra.err + rb.err, "uploading agent " + hash.substr(0, 12)) >= 1);
    // Whoever uploaded, exactly the one hash directory is left: no .tmp.*
    // and no .damaged.* entries.
    CHECK(List(cache + "/agent") == std::vector<std::string>{hash});
    CHECK(ReadFile(cache + "/agent/" + hash + "/MANIFEST") ==
          ReadFile(BundleDir() + "/tree/MANIFEST"));
  }
}

}  // namespace
}  // namespace mproxy::e2e
