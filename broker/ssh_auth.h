// User authentication on a connected, host-key-checked libssh session.
#pragma once

#include <libssh/libssh.h>

#include "broker/ssh_options.h"
#include "common/result.h"

namespace mproxy::broker {

// Tries, in order and as far as the server allows each: ssh-agent (when
// SSH_AUTH_SOCK is set), the key files (options.identity_files, then the
// config's IdentityFile and the default ~/.ssh/id_*; passphrases asked on
// /dev/tty only when there is a terminal), then password and
// keyboard-interactive (only with a terminal). On failure the error lists the
// methods tried and the methods the server accepts.
//
// Runs on the connection's thread; blocks.
Status Authenticate(ssh_session session, const SshTarget& target, const SshOptions& options);

}  // namespace mproxy::broker
