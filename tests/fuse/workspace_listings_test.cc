// ListingCache against a fake backend: fetches shared by waiters, lookups
// from a listing, the session's own changes applied, reading ahead.
#include "fuse/workspace_listings.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <map>

namespace mproxy::fuse {
namespace {

proto::FsAttr Attr(uint32_t mode, uint64_t ino) {
  proto::FsAttr a;
  a.mode = mode;
  a.ino = ino;
  return a;
}

proto::FsDirEntry Entry(std::string name, uint32_t mode, uint64_t ino) {
  proto::FsDirEntry e;
  e.name = std::move(name);
  e.ino = ino;
  e.type = mode & S_IFMT;
  e.attr = Attr(mode, ino);
  return e;
}

// Answers LISTDIR from `dirs`; holds the answers until Release() when asked.
class FakeBackend : public FsBackend {
 public:
  std::map<std::string, Entries> dirs;
  std::map<std::string, int> listed;  // LISTDIR requests per path
  bool hold = false;
  std::vector<std::pair<std::string, Done>> held;

  void Submit(proto::FsOpRequest request, Done done) override {
    auto* l = std::get_if<proto::FsListdirRequest>(&request);
    REQUIRE(l != nullptr);
    ++listed[l->path];
    if (hold) {
      held.emplace_back(l->path, std::move(done));
      return;
    }
    Answer(l->path, done);
  }
  void Answer(const std::string& path, const Done& done) {
    auto it = dirs.find(path);
    if (it == dirs.end()) return done(proto::MakeFsError(0, ENOENT));
    proto::FsReaddirReply r;
    r.entries = it->second;
    r.eof = true;
    done(proto::MakeFsReply(0, r));
  }
  void Release() {
    auto h = std::move(held);
    held.clear();
    for (auto& [p, d] : h) Answer(p, d);
  }
};

TEST_CASE("listings answer lookups, and waiters share one fetch", "[fuse]") {
  FakeBackend b;
  b.dirs["/w"] = {Entry(".", S_IFDIR | 0755, 1), Entry("a.c", S_IFREG | 0644, 2),
                  Entry("sub", S_IFDIR | 0755, 3)};
  b.dirs["/w/sub"] = {Entry(".", S_IFDIR | 0755, 3)};
  ListingCache cache(&b, std::chrono::seconds(60), false);
  CHECK(cache.Lookup("/w", "a.c") == std::nullopt);  // nothing listed yet

  b.hold = true;
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    cache.Get("/w", [&](int err, std::shared_ptr<const Entries> e) {
      CHECK(err == 0);
      REQUIRE(e != nullptr);
      CHECK(e->size() == 3);
      ++answered;
    });
  }
  CHECK(b.listed["/w"] == 1);
  b.Release();  // answers /w, which queues /w/sub ahead
  CHECK(answered == 3);
  b.Release();
  CHECK(b.listed["/w/sub"] == 1);
  b.hold = false;

  auto found = cache.Lookup("/w", "a.c");
  REQUIRE(found.has_value());
  CHECK(found->found);
  CHECK(found->attr.ino == 2);
  auto missing = cache.Lookup("/w", "b.c");
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->found);

  // A cached listing answers without a fetch.
  cache.Get("/w", [&](int, std::shared_ptr<const Entries> e) { CHECK(e->size() == 3); });
  CHECK(b.listed["/w"] == 1);
  // An error is passed on.
  int err = 0;
  cache.Get("/nowhere", [&](int e, std::shared_ptr<const Entries>) { err = e; });
  CHECK(err == ENOENT);
}

TEST_CASE("the session's own changes update a listing instead of dropping it", "[fuse]") {
  FakeBackend b;
  b.dirs["/w"] = {Entry(".", S_IFDIR | 0755, 1), Entry("old", S_IFREG | 0644, 2)};
  ListingCache cache(&b, std::chrono::seconds(60), false);
  cache.Get("/w", [](int, std::shared_ptr<const Entries>) {});
  std::shared_ptr<const Entries> open_dir;
  cache.Get("/w", [&](int, std::shared_ptr<const Entries> e) { open_dir = e; });

  cache.Upsert("/w", "new", Attr(S_IFREG | 0600, 9));
  cache.Upsert("/w", "old", Attr(S_IFREG | 0640, 2));
  cache.Remove("/w", ".");
  CHECK(cache.Lookup("/w", "new")->attr.mode == (S_IFREG | 0600));
  CHECK(cache.Lookup("/w", "old")->attr.mode == (S_IFREG | 0640));
  CHECK_FALSE(cache.Lookup("/w", ".")->found);
  CHECK(open_dir->size() == 2);  // an open directory keeps what it was given
  CHECK(b.listed["/w"] == 1);

  cache.ForgetAttr("/w", "old");
  CHECK(cache.Lookup("/w", "old") == std::nullopt);  // ask the agent

  cache.SeedEmpty("/w/made", Attr(S_IFDIR | 0700, 10), 1);
  CHECK_FALSE(cache.Lookup("/w/made", "anything")->found);
  int names = 0;
  cache.Get("/w/made", [&](int, std::shared_ptr<const Entries> e) { names = int(e->size()); });
  CHECK(names == 2);  // . and ..
  CHECK(b.listed["/w/made"] == 0);

  cache.Invalidate("/w");
  CHECK(cache.Lookup("/w", "new") == std::nullopt);
  cache.Clear();
  CHECK(cache.Lookup("/w/made", "anything") == std::nullopt);
}

TEST_CASE("a fetch that predates a change is not kept", "[fuse]") {
  FakeBackend b;
  b.dirs["/w"] = {Entry(".", S_IFDIR | 0755, 1)};
  ListingCache cache(&b, std::chrono::seconds(60), false);
  b.hold = true;
  int answered = 0;
  cache.Get("/w", [&](int, std::shared_ptr<const Entries>) { ++answered; });
  cache.Invalidate("/w");  // e.g. a remote command exited meanwhile
  b.Release();
  CHECK(answered == 1);
  CHECK(cache.Lookup("/w", ".") == std::nullopt);
}

}  // namespace
}  // namespace mproxy::fuse
