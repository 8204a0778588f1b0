// Error types (see include/uqmerge/util/error.hpp).
#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace {
std::string join(const std::string& where, const std::string& message) {
  return where.empty() ? message : where + ": " + message;
}
}  // namespace

Error::Error(ErrorKind kind, std::string where, const std::string& message)
    : std::runtime_error(join(where, message)),
      kind_(kind),
      where_(std::move(where)),
      message_(message) {}

int Error::exit_code() const noexcept {
  switch (kind_) {
    case ErrorKind::BadInput: return kExitBadInput;
    case ErrorKind::NotImplemented: return kExitNotImplemented;
    case ErrorKind::Internal: break;
  }
  return kExitInternal;
}

void throw_bad_input(const std::string& where, const std::string& message) {
  throw Error(ErrorKind::BadInput, where, message);
}

void throw_internal(const std::string& where, const std::string& message) {
  throw Error(ErrorKind::Internal, where, message);
}

void rethrow_with_context(const Error& e, const std::string& outer) {
  throw Error(e.kind(), e.where().empty() ? outer : outer + ": " + e.where(), e.message());
}

int exit_code_for(const std::exception& e) noexcept {
  if (auto* err = dynamic_cast<const Error*>(&e)) return err->exit_code();
  return kExitInternal;
}

}  // namespace uqmerge
