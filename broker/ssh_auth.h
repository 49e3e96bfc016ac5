// User authentication on a connected, host-key-checked libssh session.
#pragma once

#include <libssh/libssh.h>

#include "broker/ssh_options.h"
#include "common/result.h"

namespace mproxy::broker {

// Tries, in order and as far as the server allows each: ssh-agent (when
// SSH_AUTH_SOCK is set); the key files named in options.identity_files (each
// offered by its .pub first, its passphrase asked on /dev/tty naming the
// file, up to three times); the config's IdentityFile and the default
// ~/.ssh/id_* (through libssh); then keyboard-interactive and password (up
// to three times), only with a terminal. On failure the error lists the
// methods tried, why each named key was not used, and the methods the
// server accepts.
//
// Runs on the connection's thread; blocks.
Status Authenticate(ssh_session session, const SshTarget& target, const SshOptions& options);

}  // namespace mproxy::broker
