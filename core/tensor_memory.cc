#include "core/tensor_memory.h"

#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <mutex>

namespace loom {
namespace {

std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};
std::atomic<bool> g_installed{false};

// Each block is the inner allocation plus a 64-byte header in front (alignment kept) that holds
// the inner DataPtr and the size. The returned DataPtr has data == context, as LibTorch requires
// of CPU storage (Allocator::clone, MKLDNN paths assert it).
constexpr size_t kHeader = 64;
struct Header {
  c10::DataPtr* inner;
  int64_t bytes;
};
static_assert(sizeof(Header) <= kHeader);

void Delete(void* data) {
  auto* h = reinterpret_cast<Header*>(static_cast<char*>(data) - kHeader);
  g_live.fetch_sub(h->bytes, std::memory_order_relaxed);
  delete h->inner;  // frees the block, header included
}

class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}
  c10::DataPtr allocate(size_t n) override {
    auto* inner = new c10::DataPtr(inner_->allocate(n + kHeader));
    char* base = static_cast<char*>(inner->get());
    *reinterpret_cast<Header*>(base) = Header{inner, static_cast<int64_t>(n)};
    const int64_t bytes = static_cast<int64_t>(n);
    const int64_t now = g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t peak = g_peak.load(std::memory_order_relaxed);
    while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    void* data = base + kHeader;
    return {data, data, &Delete, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

 private:
  c10::Allocator* inner_;
};

}  // namespace

void InstallTensorMemoryCounter() {
  static std::once_flag once;
  std::call_once(once, [] {
    static CountingAllocator* counting = new CountingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(counting, /*priority=*/100);
    g_installed = true;
  });
}

bool TensorMemoryCounterInstalled() { return g_installed; }
int64_t TensorMemoryLiveBytes() { return g_live.load(); }
int64_t TensorMemoryPeakBytes() { return g_peak.load(); }
void ResetTensorMemoryPeak() { g_peak.store(g_live.load()); }

}  // namespace loom
