// Shared pieces of the end-to-end tests: where the mproxy binary and the agent
// bundle are, command lines for the fixture's sshd, a streaming SHA-256, a
// fast PRNG for test data, and a private temporary directory.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/sshd_fixture.h"
#include "tests/support/temp_dir.h"

namespace mproxy::e2e {

// The mproxy binary under test and the build's agent bundle directory.
std::string MproxyPath();
std::string BundleDir();
// The 64-hex-digit content hash of the bundle (bundle.sha256).
std::string BundleHash();

// `mproxy [global...] exec -F <config> [opts...] mproxy-test -- cmd...`: the
// fixture's ssh_config and Host alias, as a user would type it.
std::vector<std::string> ExecArgv(const testing::SshdFixture& f,
                                  const std::vector<std::string>& cmd,
                                  const std::vector<std::string>& opts = {},
                                  const std::vector<std::string>& global = {});
// `mproxy paths -F <config> mproxy-test`.
std::vector<std::string> PathsArgv(const testing::SshdFixture& f);

// A string no other running test uses, for finding "our" remote process:
// e.g. UniqueSleep(1234) == "1234.5<pid><n>", a valid sleep(1) duration.
std::string UniqueSleep(int seconds);

// SHA-256 over data fed in pieces (OpenSSL EVP). Owned by one thread.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view bytes);
  std::string HexDigest();  // lower-case, like sha256sum; ends the hash

 private:
  EVP_MD_CTX* ctx_;
};

// xoshiro256** seeded with splitmix64: gigabytes of reproducible bytes at
// memory speed.
class Prng {
 public:
  explicit Prng(uint64_t seed);
  // Replaces `out` with `n` fresh bytes (n a multiple of 8).
  void Fill(std::string* out, size_t n);

 private:
  uint64_t Next();
  uint64_t s_[4];
};

using testing::TempDir;

// The whole content of a file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content);

// How many times `needle` occurs in `haystack`.
size_t CountOf(std::string_view haystack, std::string_view needle);

}  // namespace mproxy::e2e
