// uqmerge/io/atomic_file.hpp — outputs appear complete or not at all (DESIGN §7): write to
// "<path>.tmp.<pid>", fsync, rename over the final name, fsync the directory.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace uqmerge {

// The temporary name used for `path` by this process.
std::filesystem::path temp_path_for(const std::filesystem::path& path);

// Writes `text` to `path` atomically. Errors (full disk, permissions) throw an Error naming
// `path`; the temporary file is removed.
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

// fsync(fd) then rename(tmp, path) then fsync(dir). Throws an Error naming `path` on failure.
void commit_file(int fd, const std::filesystem::path& tmp, const std::filesystem::path& path);

// --overwrite's guard: an existing output directory is replaced only when every entry in it is
// one uqmerge writes there (`owned`), so a user's files are never deleted. Otherwise bad input
// naming `dir`, the first unexpected entries and the fix. Absent or empty `dir`: nothing to check.
void require_replaceable(const std::filesystem::path& dir,
                         const std::function<bool(const std::filesystem::directory_entry&)>& owned);
// A file a Hugging Face model directory holds: weights (*.safetensors, *.bin), their index,
// configs (*.json), tokenizer files (*.model, merges.txt, vocab.txt, *.jinja) and README.md.
bool is_model_file(const std::filesystem::directory_entry& e);
// A directory holding nothing but model files (a model directory uqmerge wrote or copied).
bool is_model_dir(const std::filesystem::path& dir);

}  // namespace uqmerge
