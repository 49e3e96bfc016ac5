// NodeTable: node ids for remote paths through lookups, renames, unlinks and
// forgets, and what a revalidation must reach.
#include "fuse/workspace_nodes.h"

#include <catch2/catch.hpp>

namespace mproxy::fuse {
namespace {

using Clock = NodeTable::Clock;
const ContentStamp kStamp{1, 2, 3, 4};

TEST_CASE("node paths follow the remote root and the names looked up", "[fuse]") {
  NodeTable t("/srv/ws");
  CHECK(t.PathOf(FUSE_ROOT_ID) == "/srv/ws");
  auto later = Clock::now() + std::chrono::seconds(5);
  fuse_ino_t src = t.Link(FUSE_ROOT_ID, "src", true, kStamp, later);
  fuse_ino_t main = t.Link(src, "main.c", false, kStamp, later);
  CHECK(src != main);
  CHECK(t.PathOf(main) == "/srv/ws/src/main.c");
  CHECK(t.ChildPath(src, "x.h") == "/srv/ws/src/x.h");
  // The same name gives the same node, with one more reference.
  CHECK(t.Link(src, "main.c", false, kStamp, later) == main);
  t.Forget(main, 1);
  CHECK(t.PathOf(main) == "/srv/ws/src/main.c");
  t.Forget(main, 1);
  CHECK(t.PathOf(main) == std::nullopt);
  CHECK(t.size() == 2);

  NodeTable root("/");
  fuse_ino_t etc = root.Link(FUSE_ROOT_ID, "etc", true, kStamp, later);
  CHECK(root.PathOf(etc) == "/etc");
  CHECK(root.ChildPath(FUSE_ROOT_ID, "tmp") == "/tmp");
}

TEST_CASE("rename moves a node with its subtree, replaces or swaps the target", "[fuse]") {
  NodeTable t("/w");
  auto later = Clock::now() + std::chrono::seconds(5);
  fuse_ino_t a = t.Link(FUSE_ROOT_ID, "a", true, kStamp, later);
  fuse_ino_t inner = t.Link(a, "f", false, kStamp, later);
  fuse_ino_t b = t.Link(FUSE_ROOT_ID, "b", true, kStamp, later);
  t.Renamed(FUSE_ROOT_ID, "a", b, "moved", false);
  CHECK(t.PathOf(a) == "/w/b/moved");
  CHECK(t.PathOf(inner) == "/w/b/moved/f");

  fuse_ino_t x = t.Link(FUSE_ROOT_ID, "x", false, kStamp, later);
  fuse_ino_t y = t.Link(FUSE_ROOT_ID, "y", false, kStamp, later);
  t.Renamed(FUSE_ROOT_ID, "x", FUSE_ROOT_ID, "y", /*exchange=*/true);
  CHECK(t.PathOf(x) == "/w/y");
  CHECK(t.PathOf(y) == "/w/x");
  t.Renamed(FUSE_ROOT_ID, "x", FUSE_ROOT_ID, "y", /*exchange=*/false);
  CHECK(t.PathOf(y) == "/w/y");
  CHECK(t.PathOf(x) == std::nullopt);  // replaced: detached
  // A detached node keeps its handles for fstat.
  t.AddHandle(x, 77);
  CHECK(t.AnyHandle(x) == 77u);
  t.RemoveHandle(x, 77);
  CHECK(t.AnyHandle(x) == std::nullopt);

  t.Unlinked(FUSE_ROOT_ID, "y");
  CHECK(t.PathOf(y) == std::nullopt);
  CHECK(t.ChildPath(y, "z") == std::nullopt);
  // A new file under the old name is a new node.
  CHECK(t.Link(FUSE_ROOT_ID, "y", false, kStamp, later) != y);
}

TEST_CASE("a revalidation reaches what the kernel may still trust, once", "[fuse]") {
  NodeTable t("/w");
  auto now = Clock::now();
  fuse_ino_t fresh = t.Link(FUSE_ROOT_ID, "fresh", false, kStamp, now + std::chrono::seconds(5));
  fuse_ino_t dir = t.Link(FUSE_ROOT_ID, "dir", true, kStamp, now + std::chrono::seconds(5));
  t.Link(FUSE_ROOT_ID, "old", false, kStamp, now - std::chrono::seconds(1));
  t.NoteNegative(FUSE_ROOT_ID, "missing", now + std::chrono::seconds(5));
  t.NoteNegative(FUSE_ROOT_ID, "long-ago", now - std::chrono::seconds(1));

  NodeTable::Fresh f = t.TakeFresh(now);
  std::sort(f.inodes.begin(), f.inodes.end());
  CHECK(f.inodes == std::vector<fuse_ino_t>{fresh, dir});
  std::vector<std::string> names;
  for (const auto& e : f.entries) {
    names.push_back(e.name + (e.dir ? "/" : ""));
    CHECK(e.parent == FUSE_ROOT_ID);
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"dir/", "fresh", "missing"});
  CHECK(t.TakeFresh(now).inodes.empty());

  // Stamps: the same file again may keep its pages, a changed one may not.
  CHECK(t.UpdateStamp(fresh, kStamp));
  CHECK_FALSE(t.UpdateStamp(fresh, ContentStamp{9, 9, 9, 4}));
}

}  // namespace
}  // namespace mproxy::fuse
