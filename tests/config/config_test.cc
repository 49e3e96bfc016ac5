// The TOML configuration: defaults, every key, layering, and the error text
// a user sees (the caller exits 2 with it).
#include "broker/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace mproxy::broker {
namespace {

const char* kOrigin = "/etc/mproxy/mproxy.toml";

ConfigLayer MustParse(std::string_view text) {
  auto r = ParseConfig(text, kOrigin, "/home/alice");
  if (!r.ok()) FAIL(r.error().message());
  return std::move(r).value();
}

std::string ErrorOf(std::string_view text) {
  auto r = ParseConfig(text, kOrigin, "/home/alice");
  REQUIRE_FALSE(r.ok());
  return r.error().message();
}

Config Apply(std::string_view text) {
  Config c;
  ApplyFileLayer(MustParse(text), &c);
  return c;
}

// A private directory of config files, removed afterwards.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/mproxy-config-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string path;
};

TEST_CASE("an empty file sets nothing and the defaults hold", "[config]") {
  Config c = Apply("# nothing here\n");
  CHECK(c.host.empty());
  CHECK(c.port == 0);
  CHECK(c.user.empty());
  CHECK(c.identities.empty());
  CHECK(c.ssh_config.empty());
  CHECK(c.known_hosts.empty());
  CHECK_FALSE(c.accept_new_host_key);
  CHECK(c.local.entries().empty());
  CHECK(c.mounts.empty());
  CHECK(c.env_keep ==
        std::vector<std::string>{"LANG", "LANGUAGE", "LC_*", "TERM", "COLORTERM", "TZ"});
  CHECK(c.env_remove.empty());
  CHECK(c.path_injection == ns::PathInjection::kPrepend);
  CHECK(c.workspace_mount);
  CHECK(c.workspace_owner_local);
  CHECK_FALSE(c.workspace_xattrs_all);
  CHECK(c.log_level == "warn");
  CHECK(c.log_file.empty());
}

TEST_CASE("every key is read into the configuration", "[config]") {
  Config c = Apply(R"(
host = "build-box"
port = 2222
user = "bob"
identity = ["~/.ssh/id_ed25519", "/keys/ci key"]
ssh_config = "none"
known_hosts = "~/.ssh/known_hosts.mproxy"
accept_new_host_key = true
local = ["make", "/usr/bin/git", "/^python[0-9.]*$/"]
mounts = ["~/src/proj:~/proj", "/work/:/srv/work/"]
path_injection = "append"

[env]
keep = ["LANG", "LC_*", "EDITOR"]
remove = ["AWS_*"]

[log]
level = "debug"
file = "~/mproxy.log"

[workspace]
mount = false
owner = "remote"
xattrs = "all"
)");
  CHECK(c.host == "build-box");
  CHECK(c.port == 2222);
  CHECK(c.user == "bob");
  CHECK(c.identities == std::vector<std::string>{"/home/alice/.ssh/id_ed25519", "/keys/ci key"});
  CHECK(c.ssh_config == "none");
  CHECK(c.known_hosts == "/home/alice/.ssh/known_hosts.mproxy");
  CHECK(c.accept_new_host_key);
  CHECK(c.local.entries() == std::vector<std::string>{"make", "/usr/bin/git", "/^python[0-9.]*$/"});
  CHECK(c.mounts == std::vector<Mount>{{"/home/alice/src/proj", "~/proj"}, {"/work", "/srv/work"}});
  CHECK(c.path_injection == ns::PathInjection::kAppend);
  CHECK(c.env_keep == std::vector<std::string>{"LANG", "LC_*", "EDITOR"});
  CHECK(c.env_remove == std::vector<std::string>{"AWS_*"});
  CHECK(c.log_level == "debug");
  CHECK(c.log_file == "/home/alice/mproxy.log");
  CHECK_FALSE(c.workspace_mount);
  CHECK_FALSE(c.workspace_owner_local);
  CHECK(c.workspace_xattrs_all);
}

TEST_CASE("dotted keys, inline tables and a single identity string are accepted", "[config]") {
  Config c = Apply(
      "env.keep = [\"A\"]\nlog = { level = \"off\" }\nidentity = \"~/k\"\n"
      "path_injection = \"off\"\n");
  CHECK(c.env_keep == std::vector<std::string>{"A"});
  CHECK(c.log_level == "off");
  CHECK(c.identities == std::vector<std::string>{"/home/alice/k"});
  CHECK(c.path_injection == ns::PathInjection::kOff);
}

TEST_CASE("unknown keys are refused naming the file and the key", "[config]") {
  CHECK(ErrorOf("hots = \"x\"\n") == "/etc/mproxy/mproxy.toml: unknown key 'hots'");
  CHECK(ErrorOf("[env]\nkeeep = []\n") == "/etc/mproxy/mproxy.toml: unknown key 'env.keeep'");
  CHECK(ErrorOf("log.colour = true\n") == "/etc/mproxy/mproxy.toml: unknown key 'log.colour'");
  CHECK(ErrorOf("[foo]\nbar = 1\n") == "/etc/mproxy/mproxy.toml: unknown key 'foo'");
  CHECK(ErrorOf("workspace.cache = false\n") ==
        "/etc/mproxy/mproxy.toml: unknown key 'workspace.cache'");
  CHECK(ErrorOf("\"odd key\" = 1\n") == "/etc/mproxy/mproxy.toml: unknown key '\"odd key\"'");
  CHECK(ErrorOf("\"\\u001b[31m\" = 1\n") == "/etc/mproxy/mproxy.toml: unknown key '\"\\x1b[31m\"'");
}

TEST_CASE("values of the wrong type or range say what is expected", "[config]") {
  const std::string f = "/etc/mproxy/mproxy.toml: ";
  CHECK(ErrorOf("port = 0") == f + "'port' must be an integer from 1 to 65535");
  CHECK(ErrorOf("port = 65536") == f + "'port' must be an integer from 1 to 65535");
  CHECK(ErrorOf("port = \"22\"") == f + "'port' must be an integer from 1 to 65535");
  CHECK(ErrorOf("port = 22.0") == f + "'port' must be an integer from 1 to 65535");
  CHECK(ErrorOf("host = 1") == f + "'host' must be a non-empty string");
  CHECK(ErrorOf("host = \"\"") == f + "'host' must be a non-empty string");
  CHECK(ErrorOf("user = \"a\\u0000b\"") == f + "'user' contains a NUL byte");
  CHECK(ErrorOf("accept_new_host_key = \"yes\"") ==
        f + "'accept_new_host_key' must be true or false");
  CHECK(ErrorOf("identity = [1]") == f + "'identity' must be a list of paths (strings)");
  CHECK(ErrorOf("identity = [\"\"]") == f + "'identity' has an empty path");
  CHECK(ErrorOf("known_hosts = \"\"") == f + "'known_hosts' must be a non-empty path");
  CHECK(
      ErrorOf("local = \"make\"") ==
      f + "'local' must be a list of commands (strings: an absolute path, a basename or /regex/)");
  CHECK(ErrorOf("mounts = [\"/a\"]") == f + "'mounts': '/a' is not local:remote");
  CHECK(ErrorOf("mounts = [\"rel:/r\"]") ==
        f + "'mounts': 'rel:/r': the local side must be an absolute path or start with ~/");
  CHECK(ErrorOf("mounts = [\"/a:r\"]") ==
        f + "'mounts': '/a:r': the remote side must be an absolute path, ~ or start with ~/");
  CHECK(ErrorOf("mounts = [\"/:/r\"]") ==
        f + "'mounts': '/:/r': the local side cannot be / itself");
  CHECK(ErrorOf("mounts = [\"/a:/r\", \"/a/:/s\"]") == f + "'mounts': '/a' is mounted twice");
  CHECK(ErrorOf("workspace = true") ==
        f + "'workspace' must be a table with 'mount', 'owner' and 'xattrs'");
  CHECK(ErrorOf("workspace.mount = \"no\"") == f + "'workspace.mount' must be true or false");
  CHECK(ErrorOf("workspace.owner = \"me\"") ==
        f + "'workspace.owner' must be \"local\" or \"remote\"");
  CHECK(ErrorOf("workspace.xattrs = \"none\"") ==
        f + "'workspace.xattrs' must be \"all\" or \"user\"");
  CHECK(ErrorOf("path_injection = \"first\"") ==
        f + "'path_injection' must be \"prepend\", \"append\" or \"off\"");
  CHECK(ErrorOf("env = 1") == f + "'env' must be a table with 'keep' and 'remove'");
  CHECK(ErrorOf("env.keep = [\"A=B\"]") == f + "'env.keep': 'A=B' is not a variable name pattern");
  CHECK(ErrorOf("log.level = \"verbose\"") ==
        f + "'log.level' must be one of \"trace\", \"debug\", \"info\", \"warn\", \"error\", "
            "\"critical\", \"off\"");
  CHECK(ErrorOf("local = [\"bin/make\"]") ==
        f + "'local': 'bin/make' is neither an absolute path, a basename nor a /regex/");
  CHECK(ErrorOf("local = [\"/(/\"]").rfind(f + "'local': '/(/' is not a valid regex: ", 0) == 0);
  CHECK(ErrorOf("local = [\"/a{100}{100}/\"]") ==
        f + "'local': regex '/a{100}{100}/' is too large (at most 256 bytes, counted "
            "repetitions multiplying to at most 1000)");
}

TEST_CASE("TOML syntax errors carry the line and column", "[config]") {
  std::string e = ErrorOf("host = \"a\"\nport = = 3\n");
  CHECK(e.rfind("/etc/mproxy/mproxy.toml:2:", 0) == 0);
  e = ErrorOf("host = \"a\"\nhost = \"b\"\n");  // a redefinition is a TOML error
  CHECK(e.rfind("/etc/mproxy/mproxy.toml:2:", 0) == 0);
  e = ErrorOf("\n\n[log\n");
  CHECK(e.rfind("/etc/mproxy/mproxy.toml:3:", 0) == 0);
  e = ErrorOf(std::string("host = \"\xff\"\n"));  // not UTF-8
  CHECK(e.rfind("/etc/mproxy/mproxy.toml:1:", 0) == 0);
  // Non-ASCII bytes where toml++ 3.3.0 once reached undefined behaviour.
  e = ErrorOf("host = \"x\" \xEF\xBB\xBB\n");
  CHECK(e.rfind("/etc/mproxy/mproxy.toml:1:", 0) == 0);
  e = ErrorOf("\xC3\xA9 = 1\n");
  CHECK(e.rfind("/etc/mproxy/mproxy.toml:1:", 0) == 0);
}

TEST_CASE("later files override earlier ones key by key, lists as a whole", "[config]") {
  Config c;
  ApplyFileLayer(MustParse("host = \"a\"\nport = 1\nlocal = [\"make\"]\n[log]\nlevel = \"info\"\n"),
                 &c);
  ApplyFileLayer(MustParse("port = 2\nlocal = [\"git\"]\n"), &c);
  CHECK(c.host == "a");
  CHECK(c.port == 2);
  CHECK(c.local.entries() == std::vector<std::string>{"git"});
  CHECK(c.log_level == "info");
}

TEST_CASE("command-line flags override scalars and add to lists", "[config]") {
  Config c = Apply(R"(
host = "a"
port = 1
identity = ["/k1"]
local = ["make"]
mounts = ["/p:/r1", "/q:/r2"]
env.remove = ["AWS_*"]
)");
  ConfigLayer flags;
  flags.port = 3;
  flags.log_level = "trace";
  flags.identities = std::vector<std::string>{"/k2", "/k1"};
  auto local = LocalRules::Parse({"git"});
  REQUIRE(local.ok());
  flags.local = *local;
  flags.mounts = std::vector<Mount>{{"/p", "/other"}, {"/z", "/r3"}};
  flags.env_remove = std::vector<std::string>{"GH_TOKEN"};
  ApplyCommandLine(flags, &c);
  CHECK(c.host == "a");
  CHECK(c.port == 3);
  CHECK(c.log_level == "trace");
  CHECK(c.identities == std::vector<std::string>{"/k2", "/k1"});
  CHECK(c.local.entries() == std::vector<std::string>{"make", "git"});
  CHECK(IsLocalCommand(c.local, "/usr/bin/make"));
  CHECK(IsLocalCommand(c.local, "/usr/bin/git"));
  CHECK(c.mounts == std::vector<Mount>{{"/q", "/r2"}, {"/p", "/other"}, {"/z", "/r3"}});
  CHECK(c.env_remove == std::vector<std::string>{"AWS_*", "GH_TOKEN"});
}

TEST_CASE("files load in order: /etc, the user's, then --config", "[config]") {
  TempDir d;
  ConfigSources s;
  s.home = "/home/alice";
  s.optional_files = {d.Write("etc.toml", "host = \"etc\"\nport = 1\nuser = \"etc\"\n"),
                      d.Write("user.toml", "port = 2\nuser = \"user\"\n")};
  s.explicit_file = d.Write("cli.toml", "user = \"cli\"\n");
  auto c = LoadConfig(s);
  REQUIRE(c.ok());
  CHECK(c->host == "etc");
  CHECK(c->port == 2);
  CHECK(c->user == "cli");
}

TEST_CASE("missing default files are skipped but a missing --config is an error", "[config]") {
  TempDir d;
  ConfigSources s;
  s.optional_files = {d.path + "/nope.toml", d.path + "/no/such/dir/mproxy.toml"};
  auto c = LoadConfig(s);
  REQUIRE(c.ok());
  CHECK(c->log_level == "warn");

  s.explicit_file = d.path + "/nope.toml";
  auto e = LoadConfig(s);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message() == d.path + "/nope.toml: No such file or directory");
}

TEST_CASE("a broken default file is an error naming that file", "[config]") {
  TempDir d;
  ConfigSources s;
  s.optional_files = {d.Write("a.toml", "port = 1\n"), d.Write("b.toml", "[log]\nfile = 3\n")};
  auto c = LoadConfig(s);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message() == d.path + "/b.toml: 'log.file' must be a path (a string)");

  s.optional_files = {d.path};  // a directory
  c = LoadConfig(s);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message() == d.path + ": not a regular file");
}

TEST_CASE("an oversized file is refused before parsing", "[config]") {
  TempDir d;
  std::string big(kMaxConfigFileBytes + 1, '#');
  ConfigSources s;
  s.explicit_file = d.Write("big.toml", big);
  auto c = LoadConfig(s);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message() == s.explicit_file + ": larger than 1048576 bytes");
}

TEST_CASE("the default sources are /etc then the passwd home's ~/.config", "[config]") {
  ConfigSources s = DefaultConfigSources("/tmp/x.toml");
  REQUIRE(s.optional_files.size() == 2);
  CHECK(s.optional_files[0] == "/etc/mproxy/mproxy.toml");
  CHECK(s.optional_files[1] ==
        s.home + (s.home.back() == '/' ? "" : "/") + ".config/mproxy/mproxy.toml");
  CHECK(s.explicit_file == "/tmp/x.toml");
}

TEST_CASE("mount specs from the command line normalize like config ones", "[config]") {
  auto m = ParseMount("~:~", "/home/alice/");
  REQUIRE(m.ok());
  CHECK(*m == Mount{"/home/alice", "~"});
  m = ParseMount("/a b/c:/remote dir/x/", "/h");
  REQUIRE(m.ok());
  CHECK(*m == Mount{"/a b/c", "/remote dir/x"});
  CHECK(ParseMount("/a:", "/h").error().message() == "'/a:' is not local:remote");
}

TEST_CASE("env patterns are shell globs on the variable name", "[config]") {
  std::vector<std::string> p = {"LC_*", "TERM", "GIT_?"};
  CHECK(EnvNameMatches(p, "LC_ALL"));
  CHECK(EnvNameMatches(p, "TERM"));
  CHECK(EnvNameMatches(p, "GIT_X"));
  CHECK_FALSE(EnvNameMatches(p, "TERMINAL"));
  CHECK_FALSE(EnvNameMatches(p, "GIT_DIR"));
  CHECK_FALSE(EnvNameMatches({}, "LANG"));
}

}  // namespace
}  // namespace mproxy::broker
