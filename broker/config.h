// The TOML configuration: the schema (docs/CONFIG.md), parsing one file into a
// layer of the keys it sets, and layering /etc, ~/.config, --config and flags.
#pragma once

#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ns/bwrap_command.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace mproxy::broker {

// The configuration files read when present, in order.
inline constexpr std::string_view kSystemConfigFile = "/etc/mproxy/mproxy.toml";
inline constexpr std::string_view kUserConfigFile = ".config/mproxy/mproxy.toml";  // in home

// A config file larger than this is refused before it is parsed.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

// One mapping: the local directory `local` shows the remote `remote`.
// `local` is absolute (a leading ~ was expanded); `remote` is absolute, "~"
// or "~/..." (the remote home, resolved on the remote side). Neither has a
// trailing slash.
struct Mount {
  std::string local;
  std::string remote;
  bool operator==(const Mount&) const = default;
};

// The commands kept local. Each entry is an absolute path ("/usr/bin/git":
// that file), a basename ("make": any command of that name), or a regex
// between slashes ("/^python[0-9.]*$/": ECMAScript syntax, searched in the
// basename and in the full path). Immutable after Parse(); any thread.
class LocalRules {
 public:
  LocalRules() = default;
  // Checks and compiles the entries; errors name the offending entry.
  static Result<LocalRules> Parse(const std::vector<std::string>& entries);

  const std::vector<std::string>& entries() const { return entries_; }
  // Adds `other`'s entries after this one's.
  void Append(const LocalRules& other);

 private:
  friend bool IsLocalCommand(const LocalRules& rules, std::string_view path);
  struct Pattern {
    std::string source;
    std::shared_ptr<const re2::RE2> re;  // shared: RE2 cannot be copied
  };
  std::vector<std::string> entries_;
  std::vector<std::string> absolute_;
  std::vector<std::string> basenames_;
  std::vector<Pattern> patterns_;
};

// Whether the command at `path` ("/usr/bin/git", or a bare name "git") stays
// local under `rules`.
bool IsLocalCommand(const LocalRules& rules, std::string_view path);

// Whether the variable `name` matches one of the glob `patterns` (fnmatch).
bool EnvNameMatches(const std::vector<std::string>& patterns, std::string_view name);

// The resolved settings: defaults overlaid with every layer. A plain value.
struct Config {
  std::string host;                     // [user@]host[:port] or ssh://...; empty: none configured
  int port = 0;                         // 0: the SSH config's Port, else 22
  std::string user;                     // empty: the SSH config's User, else the local user
  std::vector<std::string> identities;  // tried first, then the SSH config's and default keys
  std::string ssh_config;               // empty: ~/.ssh/config; "none": no SSH config
  std::string known_hosts;              // empty: ~/.ssh/known_hosts
  bool accept_new_host_key = false;
  LocalRules local;
  std::vector<Mount> mounts;
  std::vector<std::string> env_keep = {"LANG", "LANGUAGE", "LC_*", "TERM", "COLORTERM", "TZ"};
  std::vector<std::string> env_remove;
  ns::PathInjection path_injection = ns::PathInjection::kPrepend;
  // Mount the remote directory with the working directory's path over it.
  bool workspace_mount = true;
  // Show the remote user's files as the local user's ("local") or with the
  // remote numbers ("remote").
  bool workspace_owner_local = true;
  // Pass every extended attribute namespace ("all") or only user.* ("user",
  // as NFS 4.2 does): the remote host's security labels and ACLs name its
  // own policy and uids, which mean nothing locally.
  bool workspace_xattrs_all = false;
  std::string log_level = "warn";  // trace, debug, info, warn, error, critical, off
  std::string log_file;            // empty: stderr
};

// The keys one source (a file, or the command line) sets; unset keys leave
// the value below them alone. The CLI fills one from its flags.
struct ConfigLayer {
  std::optional<std::string> host;
  std::optional<int> port;
  std::optional<std::string> user;
  std::optional<std::vector<std::string>> identities;
  std::optional<std::string> ssh_config;
  std::optional<std::string> known_hosts;
  std::optional<bool> accept_new_host_key;
  std::optional<LocalRules> local;
  std::optional<std::vector<Mount>> mounts;
  std::optional<std::vector<std::string>> env_keep;
  std::optional<std::vector<std::string>> env_remove;
  std::optional<ns::PathInjection> path_injection;
  std::optional<bool> workspace_mount;
  std::optional<bool> workspace_owner_local;
  std::optional<bool> workspace_xattrs_all;
  std::optional<std::string> log_level;
  std::optional<std::string> log_file;
};

// Parses one file's text. `origin` (the file's path) starts every error
// message; `home` expands a leading ~ in local paths. Never throws; errors:
//   "/etc/mproxy/mproxy.toml:3:7: <TOML syntax error>"
//   "/etc/mproxy/mproxy.toml: unknown key 'log.colour'"
//   "/etc/mproxy/mproxy.toml: 'port' must be an integer from 1 to 65535"
Result<ConfigLayer> ParseConfig(std::string_view text, std::string_view origin,
                                std::string_view home);

// Reads and parses `path`. A missing file is nullopt when `must_exist` is
// false (the default locations) and an error when true (--config).
Result<std::optional<ConfigLayer>> ReadConfigFile(const std::string& path, std::string_view home,
                                                  bool must_exist);

// "local:remote" (a -v argument or a `mounts` entry) checked and normalized.
Result<Mount> ParseMount(std::string_view spec, std::string_view home);

// A later file over an earlier one: every key it sets replaces the value,
// lists included.
void ApplyFileLayer(const ConfigLayer& layer, Config* config);

// Command-line flags over the files. Scalars replace; list flags add to the
// configured lists: identities (-i) go first, local commands (--local) and
// env patterns are appended, and a mount (-v) replaces a configured one with
// the same local path.
void ApplyCommandLine(const ConfigLayer& flags, Config* config);

// Where configuration comes from.
struct ConfigSources {
  std::vector<std::string> optional_files;  // skipped silently when missing
  std::string explicit_file;                // --config; empty: none
  std::string home;                         // for ~ expansion
};

// /etc/mproxy/mproxy.toml, then ~/.config/mproxy/mproxy.toml with the home
// directory from the passwd entry (not $HOME), then `explicit_file`.
ConfigSources DefaultConfigSources(std::string explicit_file);

// Defaults, then each file in order. The first error stops (exit 2 with it).
Result<Config> LoadConfig(const ConfigSources& sources);

}  // namespace mproxy::broker
