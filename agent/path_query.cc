// PATH enumeration (PathQuery) and command lookup (Exec).
#include "agent/path_query.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

namespace mproxy::agent {
namespace {

bool IsExecutableFile(const struct stat& st) {
  return S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

std::vector<std::string> SortedNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> dirs;
  size_t start = 0;
  for (;;) {
    size_t colon = path.find(':', start);
    std::string_view part = path.substr(
        start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    dirs.emplace_back(part.empty() ? "." : std::string(part));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return dirs;
}

std::vector<proto::PathEntry> ListExecutables(const std::vector<std::string>& dirs) {
  std::vector<proto::PathEntry> entries;
  std::set<std::string> seen;
  for (const std::string& dir : dirs) {
    for (std::string& name : SortedNames(dir)) {
      if (seen.count(name) != 0) continue;
      std::string path = JoinPath(dir, name);
      struct stat st {};
      if (stat(path.c_str(), &st) != 0 || !IsExecutableFile(st)) continue;
      proto::PathEntry e;
      e.path = std::move(path);
      e.size = static_cast<uint64_t>(st.st_size);
      e.mode = st.st_mode;
      e.mtime = st.st_mtime;
      seen.insert(name);
      e.name = std::move(name);
      entries.push_back(std::move(e));
    }
  }
  return entries;
}

std::string FindExecutable(std::string_view name, std::string_view path_value,
                           const std::string& cwd) {
  for (std::string& dir : SplitPath(path_value)) {
    if (dir[0] != '/' && !cwd.empty()) dir = JoinPath(cwd, dir);
    std::string candidate = JoinPath(dir, name);
    struct stat st {};
    if (stat(candidate.c_str(), &st) != 0 || !IsExecutableFile(st)) continue;
    if (access(candidate.c_str(), X_OK) != 0) continue;
    return candidate;
  }
  return {};
}

}  // namespace mproxy::agent
