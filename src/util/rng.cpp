// Counter-based RNG (see include/uqmerge/util/rng.hpp).
#include "uqmerge/util/rng.hpp"

#include <cmath>

#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t hash_name(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

RngStream::RngStream(uint64_t seed, std::initializer_list<uint64_t> ids)
    : RngStream(seed, std::vector<uint64_t>(ids)) {}

RngStream::RngStream(uint64_t seed, const std::vector<uint64_t>& ids) : seed_(seed), ids_(ids) {
  // Two independent chained hashes of (seed, ids...): one keys Philox, the other fills the
  // counter's high half, so distinct id tuples get distinct (key, counter) spaces.
  uint64_t a = splitmix64(seed ^ 0x5851F42D4C957F2Dull);
  uint64_t b = splitmix64(seed ^ 0x14057B7EF767814Full);
  a = splitmix64(a ^ ids.size());
  for (uint64_t id : ids) {
    a = splitmix64(a ^ id);
    b = splitmix64(b + a);
  }
  key_ = {static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32)};
  stream_hi_ = b;
}

void RngStream::refill() {
  buf_ = philox4x32_10({static_cast<uint32_t>(block_), static_cast<uint32_t>(block_ >> 32),
                        static_cast<uint32_t>(stream_hi_), static_cast<uint32_t>(stream_hi_ >> 32)},
                       key_);
  ++block_;
  used_ = 0;
}

uint32_t RngStream::next_u32() {
  if (used_ == 4) refill();
  return buf_[used_++];
}

uint64_t RngStream::next_u64() {
  const uint64_t lo = next_u32();
  return (static_cast<uint64_t>(next_u32()) << 32) | lo;
}

double RngStream::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
float RngStream::uniform_float() { return static_cast<float>(next_u32() >> 8) * 0x1.0p-24f; }

double RngStream::normal() {
  // Box–Muller; 1 - u keeps the log argument in (0, 1].
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

double RngStream::gamma(double alpha) {
  UQ_CHECK(alpha > 0, "gamma shape must be positive");
  if (alpha < 1.0) {  // boost: Gamma(a) = Gamma(a+1) * U^(1/a)
    const double u = 1.0 - uniform();
    return gamma(alpha + 1.0) * std::pow(u, 1.0 / alpha);
  }
  const double d = alpha - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1.0 - uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

double RngStream::beta(double a, double b) {
  const double x = gamma(a), y = gamma(b);
  return x / (x + y);
}

std::vector<double> RngStream::dirichlet(const std::vector<double>& alpha) {
  std::vector<double> out(alpha.size());
  double sum = 0;
  for (size_t i = 0; i < alpha.size(); ++i) sum += out[i] = gamma(alpha[i]);
  for (auto& v : out) v /= sum;
  return out;
}

uint64_t RngStream::below(uint64_t n) {
  UQ_CHECK(n > 0, "below(0)");
  // Lemire-style rejection on 64 bits: reject the short top interval.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const uint64_t r = next_u64();
    if (r < limit) return r % n;
  }
}

RngStream RngStream::child(uint64_t id) const {
  std::vector<uint64_t> ids = ids_;
  ids.push_back(0xC41D000000000000ull);  // marks "child" so (a,b) and child(b) of (a) differ
  ids.push_back(id);
  return RngStream(seed_, ids);
}

}  // namespace uqmerge
