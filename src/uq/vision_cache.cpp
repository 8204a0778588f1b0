// Vision-feature cache with spill to local disk (see include/uqmerge/uq/vision_cache.hpp).
#include "uqmerge/uq/vision_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::uq {

size_t CacheKeyHash::operator()(const CacheKey& k) const {
  uint64_t h = k.tower * 0x9E3779B97F4A7C15ull;
  for (uint64_t v : {k.dataset, k.sample, k.j}) h = (h ^ v) * 0xBF58476D1CE4E5B9ull + (h >> 29);
  return static_cast<size_t>(h);
}

VisionCache::VisionCache(uint64_t budget, std::filesystem::path spill_dir)
    : budget_(budget), spill_dir_(std::move(spill_dir)) {}

VisionCache::~VisionCache() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(spill_path_.c_str());
  }
}

bool VisionCache::put(const CacheKey& k, const void* bytes, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (mem_.count(k) || spilled_.count(k)) return false;
  if (mem_bytes_ + n <= budget_) {
    const auto* p = static_cast<const uint8_t*>(bytes);
    mem_.emplace(k, std::vector<uint8_t>(p, p + n));
    mem_bytes_ += n;
    return true;
  }
  if (fd_ < 0) {
    std::filesystem::create_directories(spill_dir_);
    spill_path_ = spill_dir_ / ("vision-cache." + std::to_string(::getpid()) + ".bin");
    fd_ = ::open(spill_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0)
      throw_bad_input(spill_path_.string(), std::string("cannot create the vision-feature spill file: ") + std::strerror(errno) +
                                                " (set uq.cache_dir to a writable local disk)");
  }
  const auto* p = static_cast<const char*>(bytes);
  size_t off = 0;
  while (off < n) {
    const ssize_t w = ::pwrite(fd_, p + off, n - off, static_cast<off_t>(spill_bytes_ + off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0)
      throw_bad_input(spill_path_.string(), std::string("spill write failed: ") + std::strerror(errno) +
                                                (errno == ENOSPC ? " (disk full: raise uq.cache_memory_mb or free space)" : ""));
    off += static_cast<size_t>(w);
  }
  spilled_.emplace(k, std::make_pair(spill_bytes_, static_cast<uint64_t>(n)));
  spill_bytes_ += n;
  return true;
}

bool VisionCache::get(const CacheKey& k, std::vector<uint8_t>& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = mem_.find(k); it != mem_.end()) {
    out = it->second;
    ++hits_;
    return true;
  }
  auto it = spilled_.find(k);
  if (it == spilled_.end()) {
    ++misses_;
    return false;
  }
  out.resize(it->second.second);
  size_t off = 0;
  while (off < out.size()) {
    const ssize_t r = ::pread(fd_, out.data() + off, out.size() - off, static_cast<off_t>(it->second.first + off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw_internal(spill_path_.string(), std::string("spill read failed: ") + std::strerror(errno));
    off += static_cast<size_t>(r);
  }
  ++hits_;
  return true;
}

bool VisionCache::contains(const CacheKey& k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return mem_.count(k) || spilled_.count(k);
}

uint64_t vision_tower_hash(const Checkpoint& ck) {
  uint64_t h = 0x243F6A8885A308D3ull;
  auto mix = [&](uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
  };
  for (const auto& name : ck.names()) {
    if (name.rfind("vision.", 0) != 0) continue;
    const TensorView v = ck.view(name);
    mix(hash_name(name));
    for (int64_t d : v.shape()) mix(static_cast<uint64_t>(d));
    mix(static_cast<uint64_t>(v.dtype()));
    const std::byte* p = v.data();
    const size_t n = v.nbytes();
    uint64_t lanes[4] = {h, h ^ 1, h ^ 2, h ^ 3};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
      for (int l = 0; l < 4; ++l) {
        uint64_t w;
        std::memcpy(&w, p + i + 8 * l, 8);
        lanes[l] = (lanes[l] ^ w) * 0x9E3779B97F4A7C15ull;
        lanes[l] ^= lanes[l] >> 29;
      }
    for (uint64_t l : lanes) mix(l);
    for (; i < n; ++i) mix(static_cast<uint64_t>(p[i]));
  }
  return h;
}

}  // namespace uqmerge::uq
