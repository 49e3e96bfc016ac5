// Looking up executables on a PATH: the full listing a PathQuery asks for,
// and the single lookup Exec does for a command name without a slash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proto/messages.h"

namespace mproxy::agent {

// Splits a PATH value at ':'. An empty element means the current directory,
// as execvp treats it, and is returned as ".".
std::vector<std::string> SplitPath(std::string_view path);

// Every executable in `dirs`, in directory order; within a directory by name.
// A name seen in an earlier directory hides later ones. Only regular files
// (after following symlinks) with at least one execute bit count. Unreadable
// or missing directories are skipped. Runs synchronously: PATH directories are
// local and small.
std::vector<proto::PathEntry> ListExecutables(const std::vector<std::string>& dirs);

// The path execve should use for `name` (no slash) on `path_value`: the first
// directory holding a regular file that the caller may execute. Relative
// directories are taken relative to `cwd` (the child's working directory).
// Returns an empty string when nothing is found.
std::string FindExecutable(std::string_view name, std::string_view path_value,
                           const std::string& cwd);

}  // namespace mproxy::agent
