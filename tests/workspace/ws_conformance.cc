// ws_conformance DIR: checks that DIR behaves like a local Linux filesystem
// (ext4/tmpfs) for what real programs do. Run against the FUSE workspace
// mount and, for comparison, against a plain local directory.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/workspace/conformance.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  struct stat st {};
  if (::stat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "%s: %s is not a directory\n", argv[0], dir.c_str());
    return 2;
  }
  // Absolute, so checks can build absolute symlink targets.
  if (dir[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) {
      std::perror("getcwd");
      return 2;
    }
    dir = std::string(cwd) + "/" + dir;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  const std::string root = dir + "/conf." + std::to_string(::getpid());
  if (::mkdir(root.c_str(), 0755) < 0) {
    std::printf("FAIL setup: expected mkdir(%s) to succeed, got %s\n", root.c_str(),
                ws::ErrnoName(errno).c_str());
    return 1;
  }
  std::vector<ws::Check> checks;
  for (auto group : {ws::FileChecks, ws::TreeChecks, ws::MetaChecks, ws::SpecialChecks}) {
    for (ws::Check& check : group()) checks.push_back(std::move(check));
  }
  int failures = ws::RunChecks(root, checks);
  if (::chdir("/") < 0 || ::rmdir(root.c_str()) < 0) {
    std::printf("FAIL teardown: expected rmdir(%s) to succeed, got %s\n", root.c_str(),
                ws::ErrnoName(errno).c_str());
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
