// The one list of merge methods (see include/uqmerge/merge/method.hpp).
#include <algorithm>

#include <ATen/core/Tensor.h>

#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::merge {

namespace {
const std::vector<const Method*>& all() {
  static const std::vector<const Method*> methods = [] {
    std::vector<const Method*> v;
    for (auto* f : {&linear_methods, &task_arithmetic_methods, &model_stock_methods, &interpolation_methods, &spherical_methods})
      for (const Method* m : f()) v.push_back(m);
    return v;
  }();
  return methods;
}
}  // namespace

std::vector<std::string> method_names() {
  std::vector<std::string> n;
  for (const Method* m : all()) n.push_back(m->name());
  return n;
}

at::Tensor Method::merge_into(const TensorGroup& g, const Params& p, uint64_t seed, at::ScalarType out) const {
  return merge(g, p, seed).to(out);
}

void Method::accumulate(at::Tensor&, const at::Tensor&, double) const {
  throw_internal("merge", name() + " is not a running-sum method");
}
void Method::finish(at::Tensor&, double, const Params&) const {
  throw_internal("merge", name() + " is not a running-sum method");
}

const Method& find_method(const std::string& name) {
  for (const Method* m : all())
    if (m->name() == name) return *m;
  std::string list;
  for (const auto& n : method_names()) list += (list.empty() ? "" : ", ") + n;
  throw_bad_input("merge_method", "unknown '" + name + "' (valid: " + list + ")");
}

}  // namespace uqmerge::merge
