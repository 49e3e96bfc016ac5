// Finding a bubblewrap that works on this machine, with a reason when none
// does. The only part of ns/ that does I/O.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace mproxy::ns {

// What a session still does without bwrap; appended to every probe error so
// the broker can print it once as is.
inline constexpr std::string_view kWithoutBwrap =
    "running without a namespace: remote commands still work through the stub PATH, "
    "but mounts (local:remote) are unavailable";

// True when bwrap must be given --unshare-user: not running as root.
bool NeedUserNamespace();

// Finds "bwrap" in $PATH and runs it once with the flags a session uses
// (`bwrap --die-with-parent [--unshare-user] --dev-bind / / -- true`).
// Returns its absolute path, or an error naming what is missing or what bwrap
// said ("bubblewrap: /usr/bin/bwrap cannot create a namespace here: bwrap:
// No permissions to create new namespace ...; running without ..."). Blocks
// for at most a few seconds; call once per session, from any thread.
Result<std::string> FindUsableBwrap();

// The same with an explicit search path (PATH syntax) and user-namespace
// choice; for tests.
Result<std::string> FindUsableBwrap(std::string_view search_path, bool unshare_user);

}  // namespace mproxy::ns
