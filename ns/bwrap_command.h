// The bubblewrap command line and environment for the session's entrypoint.
// Pure functions: no I/O, so golden-vector tests pin every argument.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mproxy::ns {

// Environment variables the entrypoint (and so every shim it starts) gets.
// The shim reads them; nothing else should rely on them.
inline constexpr std::string_view kEnvSocket = "MPROXY_SOCK";       // broker's unix socket
inline constexpr std::string_view kEnvStubDir = "MPROXY_STUB_DIR";  // path-stub directory
inline constexpr std::string_view kEnvHost = "MPROXY_HOST";         // remote host, for messages
inline constexpr std::string_view kEnvSession = "MPROXY_SESSION";   // opaque session id

// PATH used when the outer environment has none and the stub dir must go in:
// Debian's PATH for root (/etc/profile), so local tools stay reachable.
inline constexpr std::string_view kFallbackPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

enum class PathInjection { kPrepend, kAppend, kOff };

// One bind mount into the namespace: `source` is a host path (a FUSE
// workspace mount point), `dest` the path the program sees it at (the local
// side of a local:remote mapping). Both absolute.
struct BindMount {
  std::string source;
  std::string dest;
};

// Everything the entrypoint's namespace is made of. Filled in by the broker;
// a plain value, no ownership, any thread.
struct NamespaceSpec {
  std::string bwrap_path = "bwrap";  // from FindUsableBwrap()
  // Unprivileged bwrap can only create a mount namespace inside a user
  // namespace; root needs none. See NeedUserNamespace().
  bool unshare_user = false;
  // The path-stub directory as the program sees it (goes into PATH and
  // MPROXY_STUB_DIR). Empty: no stub dir.
  std::string stub_dir;
  // Host path of the stub-dir mount when it differs from stub_dir; it is then
  // bound read-only at stub_dir. Empty: stub_dir is already visible as is.
  std::string stub_dir_source;
  std::vector<BindMount> mounts;
  std::string cwd;  // working directory inside; empty: bwrap keeps the current one
  PathInjection path_injection = PathInjection::kPrepend;
  std::string socket_path;           // MPROXY_SOCK; these three are left unset when empty
  std::string host;                  // MPROXY_HOST
  std::string session_id;            // MPROXY_SESSION
  std::vector<std::string> program;  // argv of the entrypoint; must not be empty
  // An fd bwrap inherits and writes its JSON report to (--info-fd), whose
  // "child-pid" is the program's pid: signals for the program go there, as
  // bwrap itself passes none on. -1: none.
  int info_fd = -1;
};

// Checks what BuildBwrapArgv() takes for granted: a program, absolute mount
// paths, no mount over "/" and no two mounts at the same place.
Status CheckNamespaceSpec(const NamespaceSpec& spec);

// The full argv to execve (argv[0] is spec.bwrap_path):
//   bwrap --die-with-parent [--info-fd N] [--unshare-user] --dev-bind / /
//         [--ro-bind STUB_SRC STUB] [--bind SRC DEST]... [--chdir DIR] -- PROGRAM...
// Mounts are ordered by the depth of their destination (parents first, ties in
// the given order) so a mount nested inside another stays visible.
std::vector<std::string> BuildBwrapArgv(const NamespaceSpec& spec);

// The program's pid from what bwrap wrote to its --info-fd (a JSON object
// with "child-pid": N, possibly still incomplete); nullopt until it is there.
std::optional<int> ParseBwrapChildPid(std::string_view info);

// The environment for the entrypoint, as "NAME=value" entries: `base_env` in
// its order, with malformed entries (no '='), repeated names (the first wins,
// as getenv does) and stale session variables (kEnv*) dropped, PATH with the
// stub dir injected, then the session variables. Works without bwrap too.
std::vector<std::string> BuildEnv(const std::vector<std::string>& base_env,
                                  const NamespaceSpec& spec);

// PATH with `stub_dir` added per `mode`, after dropping copies of it already
// there; the other elements keep their meaning (an empty PATH, i.e. "current
// directory", stays in). `path` is nullopt when PATH is unset: then kPrepend
// and kAppend start from kFallbackPath and kOff leaves it unset (nullopt).
std::optional<std::string> InjectPath(std::optional<std::string_view> path,
                                      std::string_view stub_dir, PathInjection mode);

}  // namespace mproxy::ns
