// The authentication sequence: agent, key files, then interactive methods.
#include "broker/ssh_auth.h"

#include <libssh/callbacks.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "broker/ssh_prompt.h"
#include "common/passwd.h"

namespace mproxy::broker {
namespace {

// Wrong passphrases allowed per key file, and wrong passwords, before mproxy
// gives up (as OpenSSH).
constexpr int kPassphraseAttempts = 3;

struct PromptContext {
  bool allowed = false;
  std::string key;     // the key file being decrypted; empty: libssh's choice
  bool asked = false;  // a passphrase was asked since the flag was cleared
};

// libssh's passphrase callback (its own prompt is a bare "Passphrase").
// noexcept: it is called from C.
int AskPassphrase(const char* /*prompt*/, char* buf, size_t len, int echo, int /*verify*/,
                  void* userdata) noexcept {
  auto* ctx = static_cast<PromptContext*>(userdata);
  if (ctx == nullptr || !ctx->allowed || len == 0) return -1;
  try {
    ctx->asked = true;
    const std::string prompt =
        "Enter passphrase for key " +
        (ctx->key.empty() ? std::string("(from the ssh config or ~/.ssh)") : "'" + ctx->key + "'") +
        ": ";
    auto answer = PromptOnTerminal(prompt, echo != 0);
    if (!answer.ok() || answer->size() + 1 > len) return -1;
    std::memcpy(buf, answer->c_str(), answer->size() + 1);
    return 0;
  } catch (...) {
    return -1;
  }
}

// One key file named by -i / `identity`: offered by its public half first
// (no passphrase is asked for a key the server would refuse), then signed
// with, asking for its passphrase up to kPassphraseAttempts times. Returns
// an SSH_AUTH_* code; `note` says why a key was not used.
int TryKeyFile(ssh_session session, const std::string& named, PromptContext* prompts,
               std::string* note) {
  const std::string path = ExpandHome(named, HomeDirectory());
  if (access(path.c_str(), R_OK) != 0) {
    *note = named + ": " + std::strerror(errno);
    return SSH_AUTH_DENIED;
  }
  ssh_key pub = nullptr;
  if (ssh_pki_import_pubkey_file((path + ".pub").c_str(), &pub) == SSH_OK) {
    int offered = ssh_userauth_try_publickey(session, nullptr, pub);
    ssh_key_free(pub);
    if (offered == SSH_AUTH_ERROR) return offered;
    if (offered != SSH_AUTH_SUCCESS) {
      *note = named + ": not accepted by the server";
      return SSH_AUTH_DENIED;
    }
  }
  prompts->key = named;
  ssh_key priv = nullptr;
  int rc = SSH_ERROR;
  for (int attempt = 0; attempt < kPassphraseAttempts; ++attempt) {
    prompts->asked = false;
    rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, &AskPassphrase, prompts, &priv);
    if (rc == SSH_OK || !prompts->asked) break;
    // A passphrase was typed and did not decrypt the key.
  }
  prompts->key.clear();
  if (rc != SSH_OK) {
    if (prompts->asked) {
      *note = named + ": wrong passphrase";
    } else if (!prompts->allowed) {
      *note = named + ": unreadable, or needs a passphrase and there is no terminal to ask on";
    } else {
      *note = named + ": not a private key libssh can read";
    }
    return SSH_AUTH_DENIED;
  }
  rc = ssh_userauth_publickey(session, nullptr, priv);
  ssh_key_free(priv);
  if (rc != SSH_AUTH_SUCCESS && rc != SSH_AUTH_ERROR && rc != SSH_AUTH_PARTIAL) {
    *note = named + ": refused by the server";
  }
  return rc;
}

// Installs the passphrase callback for the duration of authentication and
// leaves the session with an empty callback set afterwards, so libssh never
// holds a pointer to this stack frame.
class ScopedAuthCallbacks {
 public:
  ScopedAuthCallbacks(ssh_session session, PromptContext* ctx) : session_(session) {
    std::memset(&cb_, 0, sizeof cb_);
    cb_.userdata = ctx;
    cb_.auth_function = AskPassphrase;
    ssh_callbacks_init(&cb_);
    ssh_set_callbacks(session_, &cb_);
  }
  ~ScopedAuthCallbacks() { ssh_set_callbacks(session_, Empty()); }
  ScopedAuthCallbacks(const ScopedAuthCallbacks&) = delete;
  ScopedAuthCallbacks& operator=(const ScopedAuthCallbacks&) = delete;

 private:
  static ssh_callbacks_struct* Empty() {
    static ssh_callbacks_struct* empty = [] {
      static ssh_callbacks_struct cb;
      std::memset(&cb, 0, sizeof cb);
      ssh_callbacks_init(&cb);
      return &cb;
    }();
    return empty;
  }

  ssh_session session_;
  ssh_callbacks_struct cb_;
};

std::string MethodNames(int methods) {
  std::string out;
  auto add = [&](int bit, const char* name) {
    if (!(methods & bit)) return;
    if (!out.empty()) out += ", ";
    out += name;
  };
  add(SSH_AUTH_METHOD_PUBLICKEY, "publickey");
  add(SSH_AUTH_METHOD_PASSWORD, "password");
  add(SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive");
  add(SSH_AUTH_METHOD_HOSTBASED, "hostbased");
  add(SSH_AUTH_METHOD_GSSAPI_MIC, "gssapi-with-mic");
  return out.empty() ? "none" : out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

int KeyboardInteractive(ssh_session session) {
  int rc = ssh_userauth_kbdint(session, nullptr, nullptr);
  while (rc == SSH_AUTH_INFO) {
    const char* instruction = ssh_userauth_kbdint_getinstruction(session);
    int prompts = ssh_userauth_kbdint_getnprompts(session);
    std::string header = instruction && *instruction ? std::string(instruction) + "\n" : "";
    for (int i = 0; i < prompts; ++i) {
      char echo = 0;
      const char* prompt = ssh_userauth_kbdint_getprompt(session, static_cast<unsigned>(i), &echo);
      auto answer = PromptOnTerminal(header + (prompt ? prompt : ""), echo != 0);
      header.clear();
      if (!answer.ok()) return SSH_AUTH_DENIED;
      if (ssh_userauth_kbdint_setanswer(session, static_cast<unsigned>(i), answer->c_str()) < 0) {
        return SSH_AUTH_ERROR;
      }
    }
    rc = ssh_userauth_kbdint(session, nullptr, nullptr);
  }
  return rc;
}

}  // namespace

Status Authenticate(ssh_session session, const SshTarget& target, const SshOptions& options) {
  PromptContext prompts;
  prompts.allowed = options.allow_prompts && HaveTerminal();
  ScopedAuthCallbacks callbacks(session, &prompts);

  auto fatal = [&](const char* step) {
    return Error(std::string("ssh: authentication as ") + target.ToString() + " failed during " +
                 step + ": " + ssh_get_error(session));
  };

  int rc = ssh_userauth_none(session, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return Ok();
  if (rc == SSH_AUTH_ERROR) return fatal("the none method");
  int methods = ssh_userauth_list(session, nullptr);
  std::vector<std::string> tried;
  std::vector<std::string> skipped;

  auto done = [&](int result, const char* step) -> Result<bool> {
    if (result == SSH_AUTH_SUCCESS) return true;
    if (result == SSH_AUTH_ERROR) return fatal(step);
    if (result == SSH_AUTH_PARTIAL) methods = ssh_userauth_list(session, nullptr);
    return false;
  };

  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    const char* agent = std::getenv("SSH_AUTH_SOCK");
    if (agent != nullptr && *agent != '\0') {
      tried.push_back("ssh-agent");
      auto r = done(ssh_userauth_agent(session, nullptr), "ssh-agent");
      if (!r.ok()) return r.error();
      if (*r) return Ok();
    }
  }
  // Keys named with -i: tried here, so a passphrase prompt names the file
  // and a mistyped passphrase can be typed again.
  std::vector<std::string> keys;
  for (const auto& named : options.identity_files) {
    if (!(methods & SSH_AUTH_METHOD_PUBLICKEY)) break;
    std::string note;
    auto r = done(TryKeyFile(session, named, &prompts, &note), "public key");
    if (!r.ok()) return r.error();
    if (*r) return Ok();
    keys.push_back(note.empty() ? named : note);
  }
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    keys.push_back("IdentityFile from the ssh config");
    keys.push_back("~/.ssh/id_ed25519, id_ecdsa, id_rsa");
    tried.push_back("public keys (" + Join(keys) + ")");
    auto r = done(ssh_userauth_publickey_auto(session, nullptr, nullptr), "public key");
    if (!r.ok()) return r.error();
    if (*r) return Ok();
  }
  if (methods & SSH_AUTH_METHOD_INTERACTIVE) {
    if (prompts.allowed) {
      tried.push_back("keyboard-interactive");
      auto r = done(KeyboardInteractive(session), "keyboard-interactive");
      if (!r.ok()) return r.error();
      if (*r) return Ok();
    } else {
      skipped.push_back("keyboard-interactive");
    }
  }
  if (methods & SSH_AUTH_METHOD_PASSWORD) {
    if (prompts.allowed) {
      tried.push_back("password");
      for (int attempt = 0; attempt < kPassphraseAttempts; ++attempt) {
        auto password = PromptOnTerminal(
            std::string(attempt > 0 ? "Permission denied, please try again.\n" : "") +
                target.ToString() + "'s password: ",
            false);
        if (!password.ok()) break;
        auto r = done(ssh_userauth_password(session, nullptr, password->c_str()), "password");
        if (!r.ok()) return r.error();
        if (*r) return Ok();
        if (!(methods & SSH_AUTH_METHOD_PASSWORD)) break;
      }
    } else {
      skipped.push_back("password");
    }
  }

  std::string msg = "ssh: authentication as " + target.ToString() + " failed; tried: " +
                    (tried.empty() ? std::string("nothing usable") : Join(tried));
  if (!skipped.empty()) {
    msg += "; skipped " + Join(skipped) +
           (options.allow_prompts ? " (no terminal to ask on)" : " (prompts disabled)");
  }
  msg += "; the server accepts: " + MethodNames(methods);
  return Error(msg);
}

}  // namespace mproxy::broker
