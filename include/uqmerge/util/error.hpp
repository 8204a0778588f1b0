// uqmerge/util/error.hpp — the project's exception types and exit codes.
//
// Two tiers (as llama.cpp does): code deep inside throws an Error carrying context (the file,
// tensor, row or rank it concerns); the CLI catches once per rank, logs one line, and exits
// (or MPI_Aborts) with the code below. Not here: logging (util/log.hpp).
#pragma once

#include <stdexcept>
#include <string>

namespace uqmerge {

// Process exit codes (docs/decisions.md §exit codes).
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,        // a bug or an environment failure (MPI, CUDA, out of memory)
  kExitBadInput = 2,        // the user's input is wrong: the message names the file and the fix
  kExitNotImplemented = 3,  // a subcommand that exists in the CLI but is not built yet
  kExitStopped = 75,        // stopped on SIGTERM/SIGUSR1 at a safe point, resume state saved:
                            // rerun the same command to continue (EX_TEMPFAIL; jobs/ requeues)
};

enum class ErrorKind { BadInput, Internal, NotImplemented };

// An error with the place it concerns. what() is the full one-line message:
//   "<where>: <message>"   e.g. "ckpt/model.safetensors: truncated: tensor 'x' ends at ..."
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string where, const std::string& message);

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& where() const noexcept { return where_; }
  // The message without the "<where>: " prefix.
  const std::string& message() const noexcept { return message_; }
  int exit_code() const noexcept;

 private:
  ErrorKind kind_;
  std::string where_;
  std::string message_;
};

// The user's input is wrong (file, config, dataset row...). `where` names the file or field.
[[noreturn]] void throw_bad_input(const std::string& where, const std::string& message);
// Something that should not happen, or a failing system call / library.
[[noreturn]] void throw_internal(const std::string& where, const std::string& message);

// Keeps the kind of `e` and puts `outer` in front of its where-part, for adding context
// ("while opening checkpoint X") as the exception crosses a layer.
[[noreturn]] void rethrow_with_context(const Error& e, const std::string& outer);

// Maps any exception to the exit code the CLI should use.
int exit_code_for(const std::exception& e) noexcept;

}  // namespace uqmerge

// Internal invariant check that survives Release builds: throws an internal Error with file:line.
#define UQ_CHECK(cond, msg)                                                                 \
  do {                                                                                      \
    if (!(cond))                                                                            \
      ::uqmerge::throw_internal(std::string(__FILE__) + ":" + std::to_string(__LINE__),     \
                                std::string("check failed: " #cond ": ") + (msg));          \
  } while (0)
