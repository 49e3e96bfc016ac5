// Static entry point of an agent bundle: execs the bundle's own dynamic loader
// on libexec/<own name> so neither the host's loader nor its libc is ever used.
// C and -static on purpose: it must start on any x86_64/aarch64 Linux >= 3.2.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#if defined(__x86_64__)
#define LOADER_NAME "ld-linux-x86-64.so.2"
#elif defined(__aarch64__)
#define LOADER_NAME "ld-linux-aarch64.so.1"
#else
#error "no loader name known for this architecture"
#endif

// Exit status when the bundle cannot be started, as a shell does for a command
// it cannot run; the deployer reads it as "bundle missing or broken".
enum { kCannotRun = 127 };
enum { kMaxExtraArgs = 6 };

static int Fail(const char* what, const char* path, int err) {
  // One write so concurrent stderr users do not interleave with us.
  char line[PATH_MAX + 256];
  int n = snprintf(line, sizeof line, "mproxy-bundle-launcher: %s %s: %s\n",
                   what, path, strerror(err));
  if (n > 0) {
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
  }
  return kCannotRun;
}

// Absolute or cwd-relative path of this launcher. /proc may be missing in a
// chroot or a minimal container, so fall back to the path execve was given.
static int OwnPath(char* buf, size_t size) {
  ssize_t n = readlink("/proc/self/exe", buf, size - 1);
  if (n > 0 && (size_t)n < size - 1) {
    buf[n] = '\0';
    return 0;
  }
  const char* execfn = (const char*)getauxval(AT_EXECFN);
  if (execfn != NULL && strchr(execfn, '/') != NULL && strlen(execfn) < size) {
    strcpy(buf, execfn);
    return 0;
  }
  return -1;
}

static int Join(char* out, size_t size, const char* dir, const char* sub,
                const char* name) {
  int n = snprintf(out, size, "%s/%s/%s", dir, sub, name);
  return n > 0 && (size_t)n < size ? 0 : -1;
}

int main(int argc, char** argv) {
  char self[PATH_MAX];
  if (OwnPath(self, sizeof self) != 0) {
    return Fail("cannot find own path:", "/proc/self/exe and AT_EXECFN",
                ENOENT);
  }
  char* slash = strrchr(self, '/');
  const char* name = slash + 1;
  *slash = '\0';
  const char* dir = self[0] != '\0' ? self : "/";

  char loader[PATH_MAX];
  char lib_dir[PATH_MAX];
  char program[PATH_MAX];
  if (Join(loader, sizeof loader, dir, "lib", LOADER_NAME) != 0 ||
      snprintf(lib_dir, sizeof lib_dir, "%s/lib", dir) >= (int)sizeof lib_dir ||
      Join(program, sizeof program, dir, "libexec", name) != 0) {
    return Fail("path too long:", dir, ENAMETOOLONG);
  }

  // ld.so's --library-path replaces LD_LIBRARY_PATH for this process only, so
  // nothing in the environment changes and children exec'd by the program
  // use their own interpreter and the caller's LD_LIBRARY_PATH, if any.
  char* args[argc + kMaxExtraArgs + 1];
  int i = 0;
  args[i++] = loader;
  args[i++] = "--library-path";
  args[i++] = lib_dir;
  args[i++] = "--argv0";
  args[i++] = argc > 0 ? argv[0] : (char*)name;
  args[i++] = program;
  for (int a = 1; a < argc; ++a) args[i++] = argv[a];
  args[i] = NULL;

  execv(loader, args);
  return Fail("cannot execute", loader, errno);
}
