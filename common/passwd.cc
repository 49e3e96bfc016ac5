// CurrentUserEntry and HomeDirectory.
#include "common/passwd.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace mproxy {

PasswdEntry CurrentUserEntry() {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buf(size > 0 ? static_cast<size_t>(size) : 16384, '\0');
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return {};
  }
  return {found->pw_name != nullptr ? found->pw_name : "",
          found->pw_dir != nullptr ? found->pw_dir : ""};
}

std::string HomeDirectory() {
  std::string home = CurrentUserEntry().home;
  if (!home.empty()) return home;
  const char* env = std::getenv("HOME");
  return env != nullptr ? env : "/";
}

std::string ExpandHome(std::string_view path, std::string_view home) {
  if (path == "~") return std::string(home);
  if (path.substr(0, 2) == "~/") {
    std::string h(home);
    if (!h.empty() && h.back() == '/') h.pop_back();
    return h + std::string(path.substr(1));
  }
  return std::string(path);
}

}  // namespace mproxy
