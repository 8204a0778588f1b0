// io/torch_view: at::Tensor over mapped safetensors bytes without a copy; and our fp16/bf16
// conversions checked against torch's (an independent implementation) on random values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "test_util.hpp"
#include "uqmerge/model/torch_view.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge {
namespace {

TEST(TorchView, ZeroCopyAndKeepsMappingAlive) {
  test::TempDir d;
  {
    SafetensorsWriter w(d / "m.safetensors", {{"w", DType::F32, {2, 3}}, {"h", DType::BF16, {4}}});
    const float wv[6] = {1, 2, 3, 4, 5, 6};
    const uint16_t hv[4] = {0x3f80, 0x4000, 0x4040, 0x4080};  // 1, 2, 3, 4
    w.write("w", wv, sizeof wv);
    w.write("h", hv, sizeof hv);
    w.commit();
  }
  at::Tensor w, h;
  const std::byte* addr = nullptr;
  {
    auto f = SafetensorsFile::open(d / "m.safetensors");
    TensorView v = f->view("w");
    addr = v.data();
    bool copied = true;
    w = to_torch(v, &copied);
    EXPECT_FALSE(copied);
    h = to_torch(f->view("h"));
  }  // file object and views gone: the tensors hold the mapping
  EXPECT_EQ(static_cast<const void*>(w.data_ptr()), static_cast<const void*>(addr));
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::equal(w, torch::arange(1, 7, torch::kFloat32).reshape({2, 3})));
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(h.to(torch::kFloat32), torch::tensor({1.f, 2.f, 3.f, 4.f})));
}

TEST(TorchView, UnalignedViewIsCopied) {
  test::TempDir d;
  // A U8 tensor of 1 byte first puts the F32 tensor at an odd offset (legal safetensors).
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  std::string data(5, '\0');
  const float one = 1.f;
  std::memcpy(&data[1], &one, 4);
  test::write_bytes(d / "u.safetensors", test::safetensors_bytes(header + std::string((8 - header.size() % 8) % 8, ' '), data));
  auto f = SafetensorsFile::open(d / "u.safetensors");
  EXPECT_FALSE(f->view("f").aligned());
  bool copied = false;
  at::Tensor t = to_torch(f->view("f"), &copied);
  EXPECT_TRUE(copied);
  EXPECT_EQ(t.item<float>(), 1.f);
}

TEST(HalfConversions, MatchTorchOnRandomValues) {
  RngStream r(1, {2});
  const int n = 100000;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) {
    // Wide dynamic range incl. subnormals and overflow for fp16.
    const double e = r.uniform() * 40 - 28;
    x[i] = static_cast<float>((r.uniform() < 0.5 ? -1 : 1) * std::pow(2.0, e) * (1 + r.uniform()));
  }
  at::Tensor t = torch::from_blob(x.data(), {n}, torch::kFloat32);
  at::Tensor h = t.to(torch::kFloat16).view(torch::kInt16);
  at::Tensor b = t.to(torch::kBFloat16).view(torch::kInt16);
  const auto* hp = h.data_ptr<int16_t>();
  const auto* bp = b.data_ptr<int16_t>();
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(float_to_f16(x[i]), static_cast<uint16_t>(hp[i])) << x[i];
    ASSERT_EQ(float_to_bf16(x[i]), static_cast<uint16_t>(bp[i])) << x[i];
  }
  const at::Tensor back = t.to(torch::kFloat16).to(torch::kFloat32);
  const auto* backp = back.data_ptr<float>();
  for (int i = 0; i < n; ++i) ASSERT_EQ(f16_to_float(static_cast<uint16_t>(hp[i])), backp[i]) << i;
}

}  // namespace
}  // namespace uqmerge
