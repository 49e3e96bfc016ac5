// RuntimeDir.
#include "broker/runtime_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace mproxy::broker {
namespace {

// Makes `dir` if missing and checks it is a directory of ours that nobody
// else can enter.
Status EnsurePrivateDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Error::FromErrno("mkdir " + dir, errno);
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return Error::FromErrno("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Error(dir + " is not a directory");
  if (st.st_uid != geteuid()) {
    return Error(dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user (" +
                 std::to_string(geteuid()) + ")");
  }
  if ((st.st_mode & 077) != 0 && chmod(dir.c_str(), 0700) != 0) {
    return Error::FromErrno("chmod 0700 " + dir, errno);
  }
  return Ok();
}

bool UsableXdgDir(const char* dir) {
  if (dir == nullptr || dir[0] != '/') return false;
  struct stat st {};
  // Sockets need a short path (108 bytes); leave room for the session part.
  return std::string(dir).size() < 60 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
         st.st_uid == geteuid();
}

}  // namespace

Result<std::unique_ptr<RuntimeDir>> RuntimeDir::Create() {
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  if (UsableXdgDir(xdg)) return CreateUnder(std::string(xdg) + "/mproxy");
  return CreateUnder("/tmp/mproxy-" + std::to_string(geteuid()));
}

Result<std::unique_ptr<RuntimeDir>> RuntimeDir::CreateUnder(const std::string& parent) {
  if (auto s = EnsurePrivateDir(parent); !s) return s.error().Wrap("session directory");
  std::string tmpl = parent + "/XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return Error::FromErrno("mkdtemp " + tmpl, errno);
  auto dir = std::unique_ptr<RuntimeDir>(new RuntimeDir(tmpl));
  if (mkdir(dir->stub_dir().c_str(), 0700) != 0) {
    return Error::FromErrno("mkdir " + dir->stub_dir(), errno);
  }
  return dir;
}

RuntimeDir::~RuntimeDir() {
  std::error_code ec;
  // Not remove_all: never follow into a mount that is still there.
  unlink(socket_path().c_str());
  std::filesystem::path bin = stub_dir();
  if (rmdir(bin.c_str()) != 0 && errno == ENOTEMPTY) {
    // The fallback stub dir is a directory of symlinks.
    for (const auto& e : std::filesystem::directory_iterator(bin, ec)) {
      if (e.is_symlink(ec)) unlink(e.path().c_str());
    }
    rmdir(bin.c_str());
  }
  rmdir(path_.c_str());
}

std::string RuntimeDir::id() const {
  size_t slash = path_.rfind('/');
  return slash == std::string::npos ? path_ : path_.substr(slash + 1);
}

}  // namespace mproxy::broker
