// Zero-copy at::Tensor over mapped safetensors bytes (see include/uqmerge/model/torch_view.hpp).
#include "uqmerge/model/torch_view.hpp"

#include <torch/torch.h>

#include "uqmerge/util/error.hpp"

namespace uqmerge {

c10::ScalarType torch_scalar_type(DType t) {
  switch (t) {
    case DType::F64: return torch::kFloat64;
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::BOOL: return torch::kBool;
  }
  throw_internal("torch_view", "unknown dtype");
}

at::Tensor to_torch(const TensorView& view, bool* copied) {
  const auto opts = torch::TensorOptions().dtype(torch_scalar_type(view.dtype())).device(torch::kCPU);
  if (copied) *copied = !view.aligned();
  if (!view.aligned()) {
    at::Tensor t = torch::empty(view.shape(), opts);
    std::memcpy(t.data_ptr(), view.data(), view.nbytes());
    return t;
  }
  // The deleter owns a copy of the mapping's shared_ptr: the bytes outlive every tensor.
  auto keep = std::make_shared<std::shared_ptr<const MappedFile>>(view.file_ptr());
  return torch::from_blob(const_cast<std::byte*>(view.data()), view.shape(),
                          [keep](void*) mutable { keep.reset(); }, opts);
}

}  // namespace uqmerge
