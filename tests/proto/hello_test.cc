// Version negotiation in the Hello handshake.
#include "proto/hello.h"

#include <catch2/catch.hpp>

using namespace mproxy::proto;

TEST_CASE("MakeHello states this build's version, OS and architecture", "[proto]") {
  Hello h = MakeHello("9.9.9", {"exec"});
  REQUIRE(h.magic == "mproxy");
  REQUIRE(h.versions == std::vector<uint32_t>{kProtocolVersion});
  REQUIRE(h.os == "Linux");
  REQUIRE_FALSE(h.arch.empty());
  REQUIRE(h.capabilities == std::vector<std::string>{"exec"});
}

TEST_CASE("the highest common version is chosen", "[proto]") {
  Hello a, b;
  a.versions = {1, 2, 3};
  b.versions = {2, 3, 4};
  REQUIRE(NegotiateVersion(a, b).value() == 3);
}

TEST_CASE("no common version names the versions of both sides", "[proto]") {
  Hello a, b;
  a.versions = {1};
  b.versions = {2, 3};
  b.program_version = "7.0.0";
  auto v = NegotiateVersion(a, b);
  REQUIRE_FALSE(v.ok());
  REQUIRE(v.error().message() ==
          "no common protocol version: this side speaks 1, the peer (mproxy 7.0.0) speaks 2, 3");
}

TEST_CASE("a peer with the wrong magic is not an mproxy endpoint", "[proto]") {
  Hello a, b;
  a.versions = b.versions = {1};
  b.magic = "SSH-2.0";
  auto v = NegotiateVersion(a, b);
  REQUIRE_FALSE(v.ok());
  REQUIRE_THAT(v.error().message(), Catch::StartsWith("peer is not an mproxy endpoint"));
}
