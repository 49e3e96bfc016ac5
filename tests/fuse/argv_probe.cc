// Stand-in for mproxy-shim in the stub-dir tests: prints what the shim will
// rely on (argv, AT_EXECFN, /proc/self/exe), one "key=value" per line.
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  std::printf("argv0=%s\n", argv[0]);
  for (int i = 1; i < argc; ++i) std::printf("arg=%s\n", argv[i]);
  const char* execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
  std::printf("execfn=%s\n", execfn != nullptr ? execfn : "");
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  std::printf("exe=%s\n", exe);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
