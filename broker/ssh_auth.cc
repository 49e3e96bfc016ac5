// The authentication sequence: agent, key files, then interactive methods.
#include "broker/ssh_auth.h"

#include <libssh/callbacks.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "broker/ssh_prompt.h"

namespace mproxy::broker {
namespace {

struct PromptContext {
  bool allowed = false;
};

// libssh's passphrase callback. noexcept: it is called from C.
int AskPassphrase(const char* prompt, char* buf, size_t len, int echo, int /*verify*/,
                  void* userdata) noexcept {
  auto* ctx = static_cast<PromptContext*>(userdata);
  if (ctx == nullptr || !ctx->allowed || len == 0) return -1;
  try {
    auto answer = PromptOnTerminal(prompt ? prompt : "Passphrase: ", echo != 0);
    if (!answer.ok() || answer->size() + 1 > len) return -1;
    std::memcpy(buf, answer->c_str(), answer->size() + 1);
    return 0;
  } catch (...) {
    return -1;
  }
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
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    std::vector<std::string> keys = options.identity_files;
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
      auto password = PromptOnTerminal(target.ToString() + "'s password: ", false);
      if (password.ok()) {
        auto r = done(ssh_userauth_password(session, nullptr, password->c_str()), "password");
        if (!r.ok()) return r.error();
        if (*r) return Ok();
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
