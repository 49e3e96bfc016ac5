// The rules a session applies to each shim request, as pure functions so
// tests pin them: which variables reach the remote command, how a local path
// maps to a remote one, which command a stub stands for, and which commands
// the entrypoint keeps local.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/config.h"

namespace mproxy::broker {

// Variables never forwarded, whatever the config says: the session's own
// (MPROXY_*) and the local dynamic loader's.
bool NeverForwarded(std::string_view name);

struct EnvPolicy {
  std::vector<std::string> keep;    // glob patterns always forwarded when set
  std::vector<std::string> remove;  // glob patterns never forwarded
  std::string stub_dir;             // stripped from PATH; empty: none
};

// What a remote command gets on top of the remote login environment, as
// Exec.env entries with inherit_env: "NAME=value" sets, a bare "NAME" unsets.
//   * a variable the program set or changed since launch (shim_env differs
//     from launch_env), or one matching `keep`, is set;
//   * a variable present at launch and since unset is unset;
//   * PATH is compared and sent with the stub dir taken out, so an unchanged
//     PATH leaves the remote one alone;
//   * NeverForwarded() names and `remove` matches are left out.
// Entries without '=' are ignored; for repeated names the first wins (getenv).
std::vector<std::string> ForwardedEnv(const std::vector<std::string>& launch_env,
                                      const std::vector<std::string>& shim_env,
                                      const EnvPolicy& policy);

// PATH without the elements equal to `stub_dir` (with or without a trailing
// slash).
std::string StripPathElement(std::string_view path, std::string_view stub_dir);

// Whether `prefix` is `path` or a parent directory of it (whole components).
bool IsUnder(std::string_view path, std::string_view prefix);

// A mapping's remote side with "~" or a leading "~/" replaced by
// `remote_home` (as written when that is empty).
std::string ResolveRemoteHome(std::string_view remote, std::string_view remote_home);

// `path` through the mappings: the mount with the longest local side that is
// `path` or a parent of it (whole components) swaps that prefix for its
// remote side. A remote side of "~" or "~/x" is resolved with `remote_home`
// (left as written when that is empty). No match: `path` unchanged, since by
// default the remote directory has the same path.
std::string MapToRemote(const std::vector<Mount>& mounts, std::string_view path,
                        std::string_view remote_home);

// The command a shim stands for. `exe` is what the kernel executed (the
// shim's AT_EXECFN): a stub in `stub_dir` gives its name. Anything else (the
// shim reached through a symlink of another name, or argv-only) gives the
// basename of `exe`, else of argv0. Empty when there is no usable name.
std::string CommandName(std::string_view exe, std::string_view argv0, std::string_view stub_dir);

// The names a session keeps local because of its entrypoint: the program's
// basename, and when the program is a script, the interpreter on its "#!"
// line, plus for "#!/usr/bin/env [-S] [-options] NAME" that NAME. `program`
// is the path as resolved on the local PATH; `first_line` is the script's
// first line (empty when not a script or unreadable).
std::vector<std::string> EntrypointLocalNames(std::string_view program,
                                              std::string_view first_line);

}  // namespace mproxy::broker
