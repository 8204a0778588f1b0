// uqmerge/util/rng.hpp — counter-based random streams (Philox4x32-10, Salmon et al. SC'11).
//
// A stream is named by what it is for: RngStream(seed, {dataset, sample, j, purpose}) draws the
// same numbers on any rank, in any order, for any rank count. That is what makes perturbations
// common to all models (DESIGN §4.1) and DARE masks independent of sharding (§4.4).
// Key = hash(seed, ids) (64 bits), counter high word = a second hash (64 bits), counter low
// word = block index. Not here: torch generators (model/ seeds them from a stream).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace uqmerge {

// One Philox4x32 block with 10 rounds: counter (4×32) and key (2×32) → 4×32 random bits.
// Inline: the merge kernels' mask loops call it per element block.
inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  // Multipliers and Weyl key increments of Salmon et al. (2011).
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0], p1 = static_cast<uint64_t>(kM1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1), static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1],
         static_cast<uint32_t>(p0)};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

// 64-bit FNV-1a of a string, to turn a name (tensor, dataset) into a stream id.
uint64_t hash_name(std::string_view name);

class RngStream {
 public:
  RngStream(uint64_t seed, std::initializer_list<uint64_t> ids);
  RngStream(uint64_t seed, const std::vector<uint64_t>& ids);

  uint32_t next_u32();
  uint64_t next_u64();
  double uniform();          // [0, 1), 53 random bits
  float uniform_float();     // [0, 1), 24 random bits
  double normal();           // standard normal (Box–Muller)
  double gamma(double alpha);  // Gamma(alpha, 1), Marsaglia–Tsang (alpha > 0)
  double beta(double a, double b);
  std::vector<double> dirichlet(const std::vector<double>& alpha);
  // Uniform integer in [0, n) without modulo bias (n > 0).
  uint64_t below(uint64_t n);
  // A child stream for a sub-purpose; independent of how much of this one was consumed.
  RngStream child(uint64_t id) const;

 private:
  void refill();
  std::array<uint32_t, 2> key_{};
  uint64_t stream_hi_ = 0;  // counter words 2..3
  uint64_t block_ = 0;      // counter words 0..1
  std::array<uint32_t, 4> buf_{};
  int used_ = 4;
  uint64_t seed_ = 0;
  std::vector<uint64_t> ids_;
};

}  // namespace uqmerge
