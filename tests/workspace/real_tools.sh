#!/usr/bin/env bash
# real_tools.sh DIR: runs the tools people use in a workspace (git, tar,
# cp -a, sqlite, python, an editor-style save, vim) inside DIR/tools.<pid>
# and checks what they leave behind. Prints "ok NAME" per step and
# "skip NAME: tool missing" where this machine lacks a tool; stops at the
# first failure with "FAIL NAME: ..." and a non-zero exit. Usage errors exit 2.
set -Eeuo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 DIR   (DIR: an existing writable directory)" >&2
  exit 2
fi
dir=$(cd "$1" && pwd)
work="$dir/tools.$$"
step=setup
rc=0

# Any command that fails outside a condition names the step it broke.
trap 'rc=$?; echo "FAIL ${step}: \`${BASH_COMMAND}\` exited ${rc}"' ERR
trap 'rm -rf "$work"' EXIT

ok() { echo "ok $step"; }
skip() { echo "skip $step: $1"; }
fail() {
  echo "FAIL $step: $1"
  exit 1
}
have() { command -v "$1" > /dev/null 2>&1; }
# expect_eq WHAT GOT WANT
expect_eq() {
  [ "$2" = "$3" ] || fail "expected $1 to be '$3', got '$2'"
}

# Nothing from the user's or the system's configuration; HOME may be
# read-only, so no tool may need to write there.
export LC_ALL=C TZ=UTC
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE

mkdir "$work"

# ---- git ------------------------------------------------------------------------

repo="$work/repo"
g() {
  git -C "$repo" -c user.name="ws test" -c user.email=ws@example.invalid \
    -c init.defaultBranch=main -c commit.gpgsign=false -c safe.directory='*' \
    -c core.hooksPath=/dev/null "$@"
}

git_steps() {
  step=git.init
  mkdir "$repo"
  g init -q
  [ -f "$repo/.git/HEAD" ] || fail "expected .git/HEAD after git init"
  ok

  step=git.add
  printf 'alpha\n' > "$repo/a.txt"
  printf 'beta\n' > "$repo/b.txt"
  mkdir "$repo/sub"
  printf 'gamma\n' > "$repo/sub/c.txt"
  g add -A
  out=$(g diff --cached --name-only | tr '\n' ' ')
  expect_eq "staged files" "$out" "a.txt b.txt sub/c.txt "
  ok

  step=git.commit
  g commit -q -m first
  out=$(g rev-list --count HEAD)
  expect_eq "commit count" "$out" 1
  out=$(g ls-tree -r --name-only HEAD | tr '\n' ' ')
  expect_eq "files in HEAD" "$out" "a.txt b.txt sub/c.txt "
  ok

  step=git.status_clean
  out=$(g status --porcelain)
  expect_eq "git status --porcelain after commit" "$out" ""
  ok

  step=git.status_modified
  printf 'changed\n' >> "$repo/a.txt"
  out=$(g status --porcelain)
  expect_eq "git status --porcelain after a change" "$out" " M a.txt"
  ok

  step=git.checkout_restores
  g checkout -- a.txt
  expect_eq "a.txt after git checkout --" "$(cat "$repo/a.txt")" "alpha"
  out=$(g status --porcelain)
  expect_eq "git status --porcelain after checkout" "$out" ""
  ok

  step=git.branch_switch
  g checkout -q -b other
  printf 'beta on other\n' > "$repo/b.txt"
  printf 'only on other\n' > "$repo/new.txt"
  g add -A
  g commit -q -m second
  g checkout -q main
  expect_eq "b.txt on main" "$(cat "$repo/b.txt")" "beta"
  [ ! -e "$repo/new.txt" ] || fail "expected new.txt gone on main, got it present"
  g checkout -q other
  expect_eq "b.txt on other" "$(cat "$repo/b.txt")" "beta on other"
  expect_eq "new.txt on other" "$(cat "$repo/new.txt")" "only on other"
  out=$(g status --porcelain)
  expect_eq "git status --porcelain after switching" "$out" ""
  ok

  step=git.gc_fsck
  g gc -q
  g fsck --strict --no-progress 2> "$work/fsck.err" || fail "git fsck: $(cat "$work/fsck.err")"
  out=$(g rev-list --count --all)
  expect_eq "commit count after gc" "$out" 2
  ok
}

if have git; then
  git_steps
else
  for step in git.init git.add git.commit git.status_clean git.status_modified \
    git.checkout_restores git.branch_switch git.gc_fsck; do skip "tool missing"; done
fi

# ---- a tree to archive and copy ---------------------------------------------------

src="$work/src"

# About 200 entries: files of varied sizes, modes and mtimes, names with
# spaces, symlinks (relative, to a directory, dangling, absolute), a hard
# link and empty directories.
make_tree() {
  local modes=(644 600 755 640 444 700)
  local i d f
  mkdir "$src"
  for i in $(seq 0 8); do mkdir "$src/dir$i"; done
  for i in $(seq 0 189); do
    d="$src/dir$((i % 9))"
    f="$d/file$i"
    [ $((i % 20)) -eq 0 ] && f="$d/file $i with spaces"
    case $((i % 4)) in
      0) : > "$f" ;;
      1) seq 1 $((i * 40)) > "$f" ;;
      2) printf 'file %d\n' "$i" > "$f" ;;
      3) head -c $((i * 531)) /dev/urandom > "$f" ;;
    esac
    chmod "${modes[i % 6]}" "$f"
    touch -d "@$((1000000000 + i * 3600))" "$f"
  done
  head -c $((1024 * 1024)) /dev/urandom > "$src/dir0/big.bin"
  mkdir "$src/links" "$src/empty" "$src/empty/nested-empty"
  ln -s ../dir1/file1 "$src/links/relative"
  ln -s ../dir2 "$src/links/to-dir"
  ln -s nowhere/at/all "$src/links/dangling"
  ln -s /nonexistent/absolute/target "$src/links/absolute"
  ln "$src/dir3/file3" "$src/links/hard"
  chmod 700 "$src/dir4"
  chmod 750 "$src/empty/nested-empty"
  # Directory mtimes last: creating entries moves them.
  find "$src" -type d -exec touch -d @1100000000 {} +
}

# What a copy must keep: type, mode and symlink target of every entry...
tree_listing() { (cd "$1" && find . -printf '%p %y %m %l\n' | sort); }
# ...and the mtime of everything but symlinks.
tree_mtimes() { (cd "$1" && find . ! -type l -exec stat -c '%n %a %Y' {} + | sort); }

# compare_tree COPY: fails the step unless COPY matches $src.
compare_tree() {
  local copy=$1
  diff -r --no-dereference "$src" "$copy" > "$work/diff.out" 2>&1 ||
    fail "diff -r $src $copy: $(head -c 600 "$work/diff.out")"
  diff <(tree_listing "$src") <(tree_listing "$copy") > "$work/diff.out" ||
    fail "types, modes or link targets differ: $(head -c 600 "$work/diff.out")"
  diff <(tree_mtimes "$src") <(tree_mtimes "$copy") > "$work/diff.out" ||
    fail "modes or mtimes differ: $(head -c 600 "$work/diff.out")"
  local link_ino file_ino
  link_ino=$(stat -c %i "$copy/links/hard")
  file_ino=$(stat -c %i "$copy/dir3/file3")
  expect_eq "inode of the hard link in the copy" "$link_ino" "$file_ino"
  expect_eq "hard link count in the copy" "$(stat -c %h "$copy/links/hard")" 2
  expect_eq "relative link target" "$(readlink "$copy/links/relative")" "../dir1/file1"
  expect_eq "content through the relative link" "$(cat "$copy/links/relative")" "$(seq 1 40)"
}

step=tree.generate
make_tree
count=$(find "$src" | wc -l)
[ "$count" -ge 200 ] || fail "expected at least 200 entries in the generated tree, got $count"
ok

# ---- tar ----------------------------------------------------------------------

if have tar; then
  step=tar.create
  tar -C "$src" -cf "$work/tree.tar" .
  [ -s "$work/tree.tar" ] || fail "expected a non-empty archive"
  ok

  step=tar.extract
  mkdir "$work/untarred"
  tar -C "$work/untarred" -xpf "$work/tree.tar"
  ok

  step=tar.compare
  compare_tree "$work/untarred"
  ok
else
  for step in tar.create tar.extract tar.compare; do skip "tool missing"; done
fi

# ---- cp -a --------------------------------------------------------------------

step=cp.archive
cp -a "$src" "$work/copied"
ok

step=cp.compare
compare_tree "$work/copied"
ok

# ---- sqlite -------------------------------------------------------------------

python=""
have python3 && python=python3

# sql DB < SCRIPT: runs SQL in one connection (one process) with the sqlite3
# shell or, lacking it, python's sqlite3 module; prints rows, one per line.
sql() {
  if have sqlite3; then
    sqlite3 -batch -bail "$1"
  else
    "$python" -c '
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
pending = ""
for line in sys.stdin:
    pending += line
    if sqlite3.complete_statement(pending):
        for row in con.execute(pending):
            print("|".join(str(v) for v in row))
        pending = ""
con.close()' "$1"
  fi
}

# sqlite_steps NAME JOURNAL_MODE
sqlite_steps() {
  local db="$work/$1.db" i want_mode
  step=$1
  want_mode=$(echo "$2" | tr '[:upper:]' '[:lower:]')
  out=$(echo "PRAGMA journal_mode=$2;" | sql "$db")
  expect_eq "journal mode" "$out" "$want_mode"
  {
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);"
    echo "BEGIN;"
    for i in $(seq 1 1000); do echo "INSERT INTO t(v) VALUES('row $i');"; done
    echo "COMMIT;"
  } | sql "$db"
  # A new connection (a new process) must see every committed row.
  out=$(echo "SELECT count(*) FROM t;" | sql "$db")
  expect_eq "row count after reopening" "$out" 1000
  out=$(echo "SELECT v FROM t WHERE id = 1000;" | sql "$db")
  expect_eq "last row" "$out" "row 1000"
  out=$(echo "PRAGMA integrity_check;" | sql "$db")
  expect_eq "PRAGMA integrity_check" "$out" "ok"
  ok
}

if have sqlite3 || [ -n "$python" ]; then
  sqlite_steps sqlite.rollback_journal DELETE
  # WAL keeps its index in a MAP_SHARED mapping of db-shm.
  sqlite_steps sqlite.wal WAL
else
  for step in sqlite.rollback_journal sqlite.wal; do skip "tool missing"; done
fi

# ---- python: a 5 MB file, an editor-style save ------------------------------------

if [ -n "$python" ]; then
  step=python.write_5mb_sha256
  written=$("$python" - "$work/five.bin" << 'EOF'
import hashlib, os, sys
data = os.urandom(5 * 1000 * 1000)
with open(sys.argv[1], "wb") as f:
    f.write(data)
print(hashlib.sha256(data).hexdigest())
EOF
  )
  read_back=$("$python" -c '
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    print(hashlib.sha256(f.read()).hexdigest())' "$work/five.bin")
  expect_eq "sha256 read back" "$read_back" "$written"
  expect_eq "size of the 5 MB file" "$(stat -c %s "$work/five.bin")" 5000000
  if have sha256sum; then
    expect_eq "sha256sum of the 5 MB file" "$(sha256sum < "$work/five.bin" | cut -d' ' -f1)" "$written"
  fi
  ok

  step=python.editor_save
  mkdir "$work/edit"
  printf 'old content\n' > "$work/edit/file"
  "$python" - "$work/edit" << 'EOF'
import os, sys
d = sys.argv[1]
path, tmp = os.path.join(d, "file"), os.path.join(d, "file.tmp")
with open(tmp, "w") as f:
    f.write("new content\n")
    f.flush()
    os.fsync(f.fileno())
os.rename(tmp, path)
dir_fd = os.open(d, os.O_RDONLY)
os.fsync(dir_fd)
os.close(dir_fd)
EOF
  expect_eq "file after the save" "$(cat "$work/edit/file")" "new content"
  expect_eq "entries after the save" "$(ls -A "$work/edit")" "file"
  ok
else
  for step in python.write_5mb_sha256 python.editor_save; do skip "tool missing"; done
fi

# ---- vim ----------------------------------------------------------------------

step=vim.edit_save
vim_bin=""
if have vim; then
  vim_bin=vim
elif have vi && vi --version 2> /dev/null | grep -q VIM; then
  vim_bin="vi"
fi
if [ -n "$vim_bin" ]; then
  mkdir "$work/vim"
  printf 'aaa\nbanana\nxyz\n' > "$work/vim/f"
  # -u NONE -i NONE: no vimrc, no viminfo (HOME may be read-only). The swap
  # file and the write-backup go next to the file, as in a real edit.
  (cd "$work/vim" && "$vim_bin" -es -u NONE -i NONE -c '%s/a/b/' -c wq f) ||
    fail "$vim_bin -es exited $?"
  expect_eq "f after the vim edit" "$(cat "$work/vim/f")" "$(printf 'baa\nbbnana\nxyz')"
  expect_eq "entries after the vim edit" "$(ls -A "$work/vim")" "f"
  ok
else
  skip "tool missing"
fi

step=cleanup
rm -rf "$work"
[ ! -e "$work" ] || fail "expected $work removed"
ok
