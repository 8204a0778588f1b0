// uqmerge/io/atomic_file.hpp — outputs appear complete or not at all (DESIGN §7): write to
// "<path>.tmp.<pid>", fsync, rename over the final name, fsync the directory.
#pragma once

#include <filesystem>
#include <string>

namespace uqmerge {

// The temporary name used for `path` by this process.
std::filesystem::path temp_path_for(const std::filesystem::path& path);

// Writes `text` to `path` atomically. Errors (full disk, permissions) throw an Error naming
// `path`; the temporary file is removed.
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

// fsync(fd) then rename(tmp, path) then fsync(dir). Throws an Error naming `path` on failure.
void commit_file(int fd, const std::filesystem::path& tmp, const std::filesystem::path& path);

}  // namespace uqmerge
