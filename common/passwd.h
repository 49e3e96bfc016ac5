// The current user's passwd entry. OpenSSH and libssh find ~/.ssh through
// it, not through $HOME, and so does mproxy.
#pragma once

#include <string>
#include <string_view>

namespace mproxy {

struct PasswdEntry {
  std::string name;  // empty when the uid has no entry
  std::string home;  // empty when the uid has no entry
};

PasswdEntry CurrentUserEntry();

// The passwd home; $HOME only when there is none (a uid without an entry,
// as in some containers); "/" as a last resort.
std::string HomeDirectory();

// A leading "~" or "~/" of `path` becomes `home`; anything else is left as
// written.
std::string ExpandHome(std::string_view path, std::string_view home);

}  // namespace mproxy
