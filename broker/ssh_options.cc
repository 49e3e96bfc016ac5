// Applies SshOptions and the SSH config to a libssh session.
#include "broker/ssh_options.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "common/passwd.h"

namespace mproxy::broker {
namespace {

Status SetOption(ssh_session session, ssh_options_e option, const void* value,
                 const std::string& what) {
  if (ssh_options_set(session, option, value) != SSH_OK) {
    return Error("ssh: cannot set " + what + ": " + ssh_get_error(session));
  }
  return Ok();
}

std::string GetOption(ssh_session session, ssh_options_e option) {
  char* value = nullptr;
  if (ssh_options_get(session, option, &value) != SSH_OK || value == nullptr) return "";
  std::string out(value);
  ssh_string_free_char(value);
  return out;
}

}  // namespace

std::string SshTarget::ToString() const {
  return user + "@" + host + ":" + std::to_string(port);
}

std::string PasswdHome() { return HomeDirectory(); }

Status ApplySshOptions(ssh_session session, const SshOptions& options) {
  if (options.host.empty()) return Error("ssh: no host given");
  // The host first: Host and Match blocks are selected by it.
  if (auto s = SetOption(session, SSH_OPTIONS_HOST, options.host.c_str(), "host"); !s) return s;
  std::string ssh_dir = PasswdHome() + "/.ssh";
  if (auto s = SetOption(session, SSH_OPTIONS_SSH_DIR, ssh_dir.c_str(), "ssh directory"); !s) {
    return s;
  }

  if (options.config_path == "none") {
    // Nothing to read.
  } else if (!options.config_path.empty()) {
    struct stat st;
    if (stat(options.config_path.c_str(), &st) != 0) {
      return Error::FromErrno("ssh: config file " + options.config_path, errno);
    }
    if (ssh_options_parse_config(session, options.config_path.c_str()) != SSH_OK) {
      return Error("ssh: cannot parse " + options.config_path + ": " + ssh_get_error(session));
    }
  } else if (ssh_options_parse_config(session, nullptr) != SSH_OK) {
    return Error("ssh: cannot parse ~/.ssh/config or /etc/ssh/ssh_config: " +
                 std::string(ssh_get_error(session)));
  }
  // Never let ssh_connect() read the default files on top of our choice.
  bool process_config = false;
  if (auto s = SetOption(session, SSH_OPTIONS_PROCESS_CONFIG, &process_config, "config");
      !s) {
    return s;
  }

  // Explicit values win over the config, as on the ssh command line.
  if (options.port > 0) {
    unsigned int port = static_cast<unsigned int>(options.port);
    if (auto s = SetOption(session, SSH_OPTIONS_PORT, &port, "port"); !s) return s;
  }
  if (!options.user.empty()) {
    if (auto s = SetOption(session, SSH_OPTIONS_USER, options.user.c_str(), "user"); !s) return s;
  }
  // options.identity_files are not handed to libssh: Authenticate tries them
  // itself, first, so that it can name them in passphrase prompts.
  if (!options.known_hosts_path.empty()) {
    if (auto s = SetOption(session, SSH_OPTIONS_KNOWNHOSTS, options.known_hosts_path.c_str(),
                           "known_hosts");
        !s) {
      return s;
    }
  }
  long timeout = static_cast<long>(options.connect_timeout.count());
  if (timeout > 0) {
    if (auto s = SetOption(session, SSH_OPTIONS_TIMEOUT, &timeout, "timeout"); !s) return s;
  }
  // Small frames (one command's request) must not wait for Nagle.
  int nodelay = 1;
  if (auto s = SetOption(session, SSH_OPTIONS_NODELAY, &nodelay, "nodelay"); !s) return s;
  return Ok();
}

SshTarget EffectiveTarget(ssh_session session) {
  SshTarget t;
  t.host = GetOption(session, SSH_OPTIONS_HOST);
  unsigned int port = 22;
  if (ssh_options_get_port(session, &port) == SSH_OK) t.port = static_cast<int>(port);
  t.user = GetOption(session, SSH_OPTIONS_USER);
  if (t.user.empty()) {
    t.user = CurrentUserEntry().name;
  }
  // Before ssh_connect() expands it, the default is "%d/known_hosts".
  std::string path = GetOption(session, SSH_OPTIONS_KNOWNHOSTS);
  if (path.empty()) path = "%d/known_hosts";
  if (path.compare(0, 2, "%d") == 0) {
    path = PasswdHome() + "/.ssh" + path.substr(2);
  } else if (path.compare(0, 1, "~") == 0) {
    path = PasswdHome() + path.substr(1);
  }
  t.known_hosts_path = path;
  return t;
}

}  // namespace mproxy::broker
