// Bulk data through `mproxy exec`: a gigabyte of random bytes out and back
// through a remote `cat`, and from a remote generator, compared by SHA-256.
// The data is generated and hashed while it streams; none of it is kept.
#include <catch2/catch.hpp>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

// 1 GiB each way, in sanitizer builds too (about 30 s there, 12 s without).
constexpr uint64_t kBytes = uint64_t{1} << 30;
constexpr size_t kChunk = 1 << 20;
constexpr seconds kLimit(900);  // anti-hang only

TEST_CASE("random binary data goes through a remote cat and back intact", "[e2e][bulk]") {
  auto f = SshdFixture::StartOrSkip();
  Child::Options o;
  o.argv = ExecArgv(*f, {"cat"});
  auto c = Child::Spawn(o);

  Prng prng(0x6d70726f7879ULL);
  Sha256 sent_hash, got_hash;
  uint64_t sent = 0, got = 0;
  std::string err;
  auto outcome = c->Pump(
      [&](std::string* chunk) {
        if (sent == kBytes) return false;
        prng.Fill(chunk, std::min<uint64_t>(kChunk, kBytes - sent));
        sent_hash.Update(*chunk);
        sent += chunk->size();
        return true;
      },
      [&](std::string_view b) {
        got_hash.Update(b);
        got += b.size();
      },
      [&](std::string_view b) { err.append(b); }, kLimit);
  INFO("sshd log:\n" << f->LogTail());
  CHECK(outcome.Describe() == "exit 0");
  CHECK(err == "");
  CHECK(sent == kBytes);
  CHECK(got == kBytes);
  CHECK(got_hash.HexDigest() == sent_hash.HexDigest());
}

TEST_CASE("random binary data from a remote generator arrives intact", "[e2e][bulk]") {
  auto f = SshdFixture::StartOrSkip();
  // The remote side hashes what it sends through a FIFO beside the stream and
  // reports the hash on stderr once everything is out.
  const std::string dir = f->remote_dir().empty() ? "/tmp" : f->remote_dir();
  const std::string script =
      "set -e; f=\"$1/e2e-fifo.$$\"; mkfifo \"$f\"; "
      "sha256sum <\"$f\" >&2 & "
      "head -c \"$2\" /dev/urandom | tee \"$f\"; wait $!; rm -f \"$f\"";
  Child::Options o;
  o.argv = ExecArgv(*f, {"sh", "-c", script, "sh", dir, std::to_string(kBytes)});
  auto c = Child::Spawn(o);

  Sha256 got_hash;
  uint64_t got = 0;
  std::string err;
  auto outcome = c->Pump(
      nullptr,
      [&](std::string_view b) {
        got_hash.Update(b);
        got += b.size();
      },
      [&](std::string_view b) { err.append(b); }, kLimit);
  INFO("sshd log:\n" << f->LogTail());
  CHECK(outcome.Describe() == "exit 0");
  CHECK(got == kBytes);
  CHECK(err == got_hash.HexDigest() + "  -\n");
}

}  // namespace
}  // namespace mproxy::e2e
