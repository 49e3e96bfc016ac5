// The helpers of e2e_util.h.
#include "tests/e2e/e2e_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace mproxy::e2e {

std::string MproxyPath() {
  if (const char* p = std::getenv("MPROXY_E2E_MPROXY"); p != nullptr && *p != '\0') return p;
  return MPROXY_E2E_MPROXY;
}

std::string BundleDir() {
  if (const char* p = std::getenv("MPROXY_AGENT_BUNDLE"); p != nullptr && *p != '\0') return p;
  return MPROXY_E2E_BUNDLE;
}

std::string BundleHash() {
  std::string hash = ReadFile(BundleDir() + "/bundle.sha256");
  while (!hash.empty() && (hash.back() == '\n' || hash.back() == ' ')) hash.pop_back();
  INFO("bundle.sha256 in " << BundleDir());
  REQUIRE(hash.size() == 64);
  return hash;
}

std::vector<std::string> ExecArgv(const testing::SshdFixture& f,
                                  const std::vector<std::string>& cmd,
                                  const std::vector<std::string>& opts,
                                  const std::vector<std::string>& global) {
  std::vector<std::string> argv = {MproxyPath()};
  argv.insert(argv.end(), global.begin(), global.end());
  argv.insert(argv.end(), {"exec", "-F", f.config_path()});
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.insert(argv.end(), {f.alias(), "--"});
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

std::vector<std::string> PathsArgv(const testing::SshdFixture& f) {
  return {MproxyPath(), "paths", "-F", f.config_path(), f.alias()};
}

std::string UniqueSleep(int seconds) {
  static std::atomic<int> counter{0};
  return std::to_string(seconds) + ".5" + std::to_string(getpid()) + std::to_string(++counter);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  REQUIRE(ctx_ != nullptr);
  REQUIRE(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(std::string_view bytes) {
  REQUIRE(EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) == 1);
}

std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_DigestFinal_ex(ctx_, md, &len) == 1);
  std::string hex;
  char two[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", md[i]);
    hex += two;
  }
  return hex;
}

Prng::Prng(uint64_t seed) {
  for (auto& s : s_) {
    seed += 0x9e3779b97f4a7c15ULL;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    s = z ^ (z >> 31);
  }
}

uint64_t Prng::Next() {
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void Prng::Fill(std::string* out, size_t n) {
  out->resize(n);
  char* p = out->data();
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = Next();
    std::memcpy(p + i, &v, 8);
  }
}

std::string ReadFile(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

size_t CountOf(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace mproxy::e2e
