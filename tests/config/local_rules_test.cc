// Which commands stay local: absolute paths, basenames and /regex/ rules.
#include <catch2/catch.hpp>

#include "broker/config.h"

namespace mproxy::broker {
namespace {

LocalRules Rules(const std::vector<std::string>& entries) {
  auto r = LocalRules::Parse(entries);
  if (!r.ok()) FAIL(r.error().message());
  return std::move(r).value();
}

TEST_CASE("an absolute path rule keeps exactly that file local", "[config]") {
  LocalRules r = Rules({"/usr/bin/git", "/opt/tools/"});
  CHECK(IsLocalCommand(r, "/usr/bin/git"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/local/bin/git"));
  CHECK_FALSE(IsLocalCommand(r, "git"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/bin/git2"));
}

TEST_CASE("a basename rule keeps the command local wherever it lives", "[config]") {
  LocalRules r = Rules({"make"});
  CHECK(IsLocalCommand(r, "make"));
  CHECK(IsLocalCommand(r, "/usr/bin/make"));
  CHECK(IsLocalCommand(r, "/home/a b/bin/make"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/bin/cmake"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/bin/make/"));
  CHECK_FALSE(IsLocalCommand(r, ""));
}

TEST_CASE("a regex rule is searched in the basename and in the full path", "[config]") {
  LocalRules r = Rules({"/^python[0-9.]*$/", "/^\\/opt\\/local-tools\\//"});
  CHECK(IsLocalCommand(r, "/usr/bin/python3"));
  CHECK(IsLocalCommand(r, "python3.11"));
  CHECK(IsLocalCommand(r, "/usr/bin/python"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/bin/python3-config"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/bin/ipython"));
  CHECK(IsLocalCommand(r, "/opt/local-tools/anything"));
  CHECK_FALSE(IsLocalCommand(r, "/usr/opt/local-tools/anything"));
}

TEST_CASE("a regex that backtracks exponentially elsewhere is matched in linear time",
          "[config]") {
  // With std::regex these ran for minutes (found by the config fuzzer).
  LocalRules r = Rules({"/(a|a)*b/", "/(a*)*c/", "/^(x+x+)+y$/"});
  const std::string name(200, 'a');
  CHECK_FALSE(IsLocalCommand(r, name));
  CHECK_FALSE(IsLocalCommand(r, "/opt/" + std::string(200, 'x')));
  CHECK(IsLocalCommand(r, name + "b"));
}

TEST_CASE("regex features that need backtracking are refused with a reason", "[config]") {
  auto backref = LocalRules::Parse({"/(a)\\1/"});
  REQUIRE_FALSE(backref.ok());
  CHECK(backref.error().message().rfind("'local': '/(a)\\1/' is not a valid regex: ", 0) == 0);
  auto lookahead = LocalRules::Parse({"/a(?=b)/"});
  REQUIRE_FALSE(lookahead.ok());
  CHECK(lookahead.error().message().find("is not a valid regex") != std::string::npos);
}

TEST_CASE("no rules keep nothing local", "[config]") {
  LocalRules r;
  CHECK_FALSE(IsLocalCommand(r, "/usr/bin/make"));
  CHECK_FALSE(IsLocalCommand(r, "make"));
}

TEST_CASE("bad local rules are refused with the entry named", "[config]") {
  CHECK(LocalRules::Parse({""}).error().message() == "'local': an entry is empty");
  CHECK(LocalRules::Parse({"//"}).error().message() == "'local': '//' is an empty regex");
  CHECK(LocalRules::Parse({"a/b"}).error().message() ==
        "'local': 'a/b' is neither an absolute path, a basename nor a /regex/");
  CHECK(LocalRules::Parse({"/a{1001}/"}).ok() == false);
  CHECK(LocalRules::Parse({"/a{2,30}b{0,30}/"}).ok());
  CHECK(LocalRules::Parse({"/x\\{1000000\\}/"}).ok());  // escaped: literal braces
  CHECK(LocalRules::Parse({"/" + std::string(300, 'a') + "/"}).ok() == false);
}

}  // namespace
}  // namespace mproxy::broker
