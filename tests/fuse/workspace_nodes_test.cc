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

TEST_CASE("the other names of a remote file are found by its inode number", "[fuse]") {
  NodeTable t("/w");
  auto later = Clock::now() + std::chrono::seconds(5);
  const ContentStamp file{1, 0, 3, 40};
  fuse_ino_t a = t.Link(FUSE_ROOT_ID, "a", false, file, later);
  CHECK(t.OtherLinks(a).empty());
  fuse_ino_t b = t.Link(FUSE_ROOT_ID, "b", false, file, later);
  fuse_ino_t c = t.Link(FUSE_ROOT_ID, "c", false, ContentStamp{1, 0, 3, 41}, later);
  // A directory with the number (another remote filesystem's) and a node
  // whose number is unknown are never hard links.
  fuse_ino_t d = t.Link(FUSE_ROOT_ID, "d", true, file, later);
  fuse_ino_t z = t.Link(FUSE_ROOT_ID, "z", false, ContentStamp{}, later);
  CHECK(t.OtherLinks(a) == std::vector<fuse_ino_t>{b});
  CHECK(t.OtherLinks(b) == std::vector<fuse_ino_t>{a});
  CHECK(t.OtherLinks(c).empty());
  CHECK(t.OtherLinks(d).empty());
  CHECK(t.OtherLinks(z).empty());

  // A detached name still stands for the file (through an open handle).
  fuse_ino_t e = t.Link(FUSE_ROOT_ID, "e", false, file, later);
  CHECK(t.Unlinked(FUSE_ROOT_ID, "e") == e);
  CHECK(t.Unlinked(FUSE_ROOT_ID, "e") == 0);
  auto others = t.OtherLinks(a);
  std::sort(others.begin(), others.end());
  CHECK(others == std::vector<fuse_ino_t>{b, e});
  t.Forget(e, 1);
  CHECK(t.OtherLinks(a) == std::vector<fuse_ino_t>{b});

  // A new stamp moves the node in the index: b is another file now.
  CHECK_FALSE(t.UpdateStamp(b, ContentStamp{2, 0, 3, 41}));
  CHECK(t.OtherLinks(a).empty());
  CHECK(t.OtherLinks(c) == std::vector<fuse_ino_t>{b});
  // A name replaced by a rename is detached and returned; one that was a
  // file and is now a directory leaves the index.
  fuse_ino_t f = t.Link(FUSE_ROOT_ID, "f", false, ContentStamp{1, 0, 3, 41}, later);
  CHECK(t.Renamed(FUSE_ROOT_ID, "f", FUSE_ROOT_ID, "c", false) == c);
  CHECK(t.Renamed(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", true) == 0);
  t.Link(FUSE_ROOT_ID, "c", true, ContentStamp{1, 0, 3, 41}, later);  // f's node
  others = t.OtherLinks(b);
  CHECK(others == std::vector<fuse_ino_t>{c});
  t.Forget(f, 2);
  t.Forget(c, 1);
  CHECK(t.OtherLinks(b).empty());

  // A change through another name is told once, to the next open.
  CHECK_FALSE(t.TakeChangedElsewhere(a));
  t.MarkChangedElsewhere(a);
  CHECK(t.TakeChangedElsewhere(a));
  CHECK_FALSE(t.TakeChangedElsewhere(a));
}

}  // namespace
}  // namespace mproxy::fuse
