// uqmerge/model/torch_view.hpp — safetensors views as at::Tensor without copying.
// This header names at::Tensor but does not include torch: only the translation units that
// already include torch call it.
#pragma once

#include <c10/core/ScalarType.h>

#include "uqmerge/io/safetensors.hpp"

namespace at {
class Tensor;
}

namespace uqmerge {

// A CPU tensor over the view's bytes (zero-copy; it holds the file mapping alive). The memory
// is mapped read-only: writing to the tensor crashes, clone() first. A view whose address is
// not aligned for its dtype is copied into an owned tensor instead (`copied` says so).
at::Tensor to_torch(const TensorView& view, bool* copied = nullptr);

// The torch element type of a safetensors dtype.
c10::ScalarType torch_scalar_type(DType t);

}  // namespace uqmerge
