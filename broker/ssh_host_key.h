// Checks the server's host key against known_hosts after the key exchange:
// unknown keys and changed keys are refused with instructions, never accepted
// silently.
#pragma once

#include <libssh/libssh.h>

#include <string>

#include "broker/ssh_options.h"
#include "common/result.h"

namespace mproxy::broker {

// "SHA256:<base64>" of the server's host key, as OpenSSH prints it.
Result<std::string> ServerKeyFingerprint(ssh_session session);

// Verifies the host key of a connected `session` for `target`.
//  * known and matching: Ok.
//  * unknown: with `accept_new`, appended to known_hosts and Ok; otherwise an
//    error with the fingerprint, the ssh-keyscan command that would trust it
//    and the --accept-new-host-key flag.
//  * changed (or a different key type than the one recorded): an error that
//    starts "WARNING: REMOTE HOST KEY HAS CHANGED", with the fingerprint and
//    the known_hosts file and line holding the old key. Never overridden by
//    `accept_new`.
Status VerifyHostKey(ssh_session session, const SshTarget& target, bool accept_new);

}  // namespace mproxy::broker
