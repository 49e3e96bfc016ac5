// Host key verification against known_hosts, with actionable error texts.
#include "broker/ssh_host_key.h"

#include <fstream>
#include <memory>

namespace mproxy::broker {
namespace {

struct KeyDeleter {
  void operator()(ssh_key key) const { ssh_key_free(key); }
};
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;

// How known_hosts names this host: "host", or "[host]:port" off port 22.
std::string KnownHostsName(const SshTarget& target) {
  if (target.port == 22) return target.host;
  return "[" + target.host + "]:" + std::to_string(target.port);
}

std::string KeyscanCommand(const SshTarget& target) {
  std::string cmd = "ssh-keyscan ";
  if (target.port != 22) cmd += "-p " + std::to_string(target.port) + " ";
  return cmd + target.host + " >> " + target.known_hosts_path;
}

// "FILE line N" for the first known_hosts line that names this host (hashed
// names included), or "".
std::string OldEntryLocation(const SshTarget& target) {
  const std::string name = KnownHostsName(target);
  for (const std::string& path :
       {target.known_hosts_path, std::string("/etc/ssh/ssh_known_hosts")}) {
    std::ifstream in(path);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == '#') continue;
      ssh_knownhosts_entry* entry = nullptr;
      int rc = ssh_known_hosts_parse_line(name.c_str(), line.c_str(), &entry);
      bool match = rc == SSH_OK && entry != nullptr;
      ssh_knownhosts_entry_free(entry);
      if (match) return path + " line " + std::to_string(n);
    }
  }
  return "";
}

}  // namespace

Result<std::string> ServerKeyFingerprint(ssh_session session) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(session, &raw) != SSH_OK || raw == nullptr) {
    return Error(std::string("ssh: the server sent no host key: ") + ssh_get_error(session));
  }
  KeyPtr key(raw);
  unsigned char* hash = nullptr;
  size_t hash_len = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) != SSH_OK) {
    return Error("ssh: cannot hash the server's host key");
  }
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
  ssh_clean_pubkey_hash(&hash);
  if (text == nullptr) return Error("ssh: cannot format the host key fingerprint");
  std::string fp(text);
  ssh_string_free_char(text);
  std::string type = ssh_key_type_to_char(ssh_key_type(key.get()));
  return type + " " + fp;
}

Status VerifyHostKey(ssh_session session, const SshTarget& target, bool accept_new) {
  auto fingerprint = ServerKeyFingerprint(session);
  if (!fingerprint.ok()) return fingerprint.error();
  const std::string name = KnownHostsName(target);

  switch (ssh_session_is_known_server(session)) {
    case SSH_KNOWN_HOSTS_OK:
      return Ok();

    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER: {
      std::string where = OldEntryLocation(target);
      std::string msg =
          "ssh: WARNING: REMOTE HOST KEY HAS CHANGED for " + name +
          "!\nSomeone could be eavesdropping on you right now (man-in-the-middle attack), "
          "or the host key has just been changed.\nThe host key it sent now is " +
          *fingerprint + ".\nThe key recorded for " + name + " is in " +
          (where.empty() ? target.known_hosts_path : where) +
          ".\nRefusing to connect. If the change is expected, remove the old key with\n"
          "  ssh-keygen -R '" + name + "' -f " + target.known_hosts_path +
          "\nand check the new fingerprint before trusting it.";
      return Error(msg);
    }

    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN: {
      if (accept_new) {
        if (ssh_session_update_known_hosts(session) != SSH_OK) {
          return Error("ssh: cannot add the host key of " + name + " to " +
                       target.known_hosts_path + ": " + ssh_get_error(session));
        }
        return Ok();
      }
      return Error("ssh: the host key of " + name + " is not known (" + *fingerprint +
                   ").\nRefusing to connect to an unknown host. Check the fingerprint, then "
                   "trust it with\n  " + KeyscanCommand(target) +
                   "\nor run again with --accept-new-host-key to add it to " +
                   target.known_hosts_path + ".");
    }

    case SSH_KNOWN_HOSTS_ERROR:
    default:
      return Error("ssh: cannot check the host key of " + name + " against " +
                   target.known_hosts_path + ": " + ssh_get_error(session));
  }
}

}  // namespace mproxy::broker
