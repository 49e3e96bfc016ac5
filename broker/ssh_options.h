// Where and how to reach a host over SSH, and applying that (together with
// the user's ~/.ssh/config) to a libssh session.
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace mproxy::broker {

// What the user asked for. Empty or zero fields come from the SSH config,
// then from the usual defaults (port 22, the local user name).
//
// ~/.ssh/config is read with libssh 0.10's parser (ssh_options_parse_config).
// Honoured: Host (aliases and patterns), Match (host, user, originalhost,
// localuser, exec), Include, HostName, Port, User, IdentityFile,
// UserKnownHostsFile, GlobalKnownHostsFile, ProxyCommand, ProxyJump,
// ConnectTimeout, Ciphers, MACs, KexAlgorithms, HostKeyAlgorithms,
// PubkeyAcceptedKeyTypes, Compression, GSSAPI*, *Authentication yes/no,
// BindAddress. ProxyJump is turned by libssh into a ProxyCommand that runs
// OpenSSH's own `ssh -W [%h]:%p JUMP`, so the jump hop is authenticated by
// OpenSSH (its config, agent and known_hosts), not by mproxy.
// Not supported by libssh 0.10 (silently ignored): IdentitiesOnly (default
// keys are tried after the named ones), CertificateFile, ControlMaster /
// ControlPath / ControlPersist, ServerAliveInterval / ServerAliveCountMax
// (use keepalive_interval / keepalive_count_max below), StrictHostKeyChecking
// (mproxy always checks; see accept_new_host_key), HashKnownHosts,
// UpdateHostKeys, AddKeysToAgent, IdentityAgent, CanonicalizeHostname, Tunnel,
// LocalForward / RemoteForward / DynamicForward, SendEnv / SetEnv,
// PKCS11Provider, SecurityKeyProvider.
struct SshOptions {
  std::string host;                          // name, address or config alias
  int port = 0;                              // 0: config, else 22
  std::string user;                          // empty: config, else local user
  std::vector<std::string> identity_files;   // tried before config/default keys
  // Empty: ~/.ssh/config (home from the passwd entry, not $HOME) and then
  // /etc/ssh/ssh_config. "none": no config at all. Otherwise only this file,
  // which must exist (like `ssh -F FILE`).
  std::string config_path;
  std::string known_hosts_path;              // empty: config, else ~/.ssh/known_hosts
  bool accept_new_host_key = false;          // --accept-new-host-key
  std::chrono::seconds connect_timeout{15};
  // A keepalive is sent after this long without hearing from the server; the
  // connection counts as dead after keepalive_count_max unanswered ones
  // (OpenSSH's ServerAliveInterval / ServerAliveCountMax). 0 disables.
  std::chrono::seconds keepalive_interval{5};
  int keepalive_count_max = 3;
  // Password, keyboard-interactive and key passphrases are asked on /dev/tty,
  // only when there is a controlling terminal and this is true.
  bool allow_prompts = true;
};

// The effective destination after the config has been applied.
struct SshTarget {
  std::string host;              // after HostName
  int port = 22;
  std::string user;
  std::string known_hosts_path;  // the user known_hosts file libssh checks
  std::string ToString() const;  // "user@host:port"
};

// Sets host, config, overrides and timeouts on `session` (before connect).
Status ApplySshOptions(ssh_session session, const SshOptions& options);

// Reads back what libssh will use; valid after ApplySshOptions.
SshTarget EffectiveTarget(ssh_session session);

// The home directory from the passwd entry of the current user.
std::string PasswdHome();

}  // namespace mproxy::broker
