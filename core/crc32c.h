// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum used by Loom for token shards and checkpoint manifests.
//
//   uint32_t crc = Crc32c(buf, n);
//   // Streaming: crc of a||b == Crc32cExtend(Crc32c(a), b).
//   uint32_t c = Crc32cExtend(Crc32c(a, na), b, nb);
//
// Uses the SSE4.2 crc32 instruction when the CPU has it, otherwise a portable
// slicing-by-8 table implementation; both give identical results.
#ifndef LOOM_CORE_CRC32C_H_
#define LOOM_CORE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace loom {

// Extends `crc` (the CRC-32C of some prefix, 0 for the empty prefix) with
// `n` more bytes.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

// CRC-32C of `n` bytes at `data`.
inline uint32_t Crc32c(const void* data, size_t n) {
  return Crc32cExtend(0, data, n);
}

namespace internal {
// The portable table path, exposed so tests can compare it with the
// hardware path on machines that have SSE4.2.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);
}  // namespace internal

}  // namespace loom

#endif  // LOOM_CORE_CRC32C_H_
