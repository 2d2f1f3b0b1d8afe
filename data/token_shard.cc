#include "data/token_shard.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/file_io.h"

namespace loom {
namespace data {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "token shards are little-endian; add byte swapping");

absl::Status ShardError(const std::string& path, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("token shard '", path, "': ", what));
}

}  // namespace

absl::Status WriteTokenShard(const std::string& path,
                             absl::Span<const uint16_t> tokens,
                             int32_t vocab_size) {
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token shard '", path, "': ", tokens.size(),
        " tokens exceed the format's int32 count; split into more shards"));
  }
  if (vocab_size < 0 || vocab_size > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("token shard '", path, "': vocab size ", vocab_size,
                     " does not fit uint16 tokens"));
  }
  if (vocab_size > 0) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token shard '", path, "': token ", tokens[i], " at index ", i,
            " is not below vocab size ", vocab_size));
      }
    }
  }
  int32_t header[kTokenShardHeaderInts] = {};
  header[0] = kTokenShardMagic;
  header[1] = kTokenShardVersion;
  header[2] = static_cast<int32_t>(tokens.size());
  header[3] = static_cast<int32_t>(
      Crc32c(tokens.data(), tokens.size() * sizeof(uint16_t)));
  header[4] = 1;
  header[5] = vocab_size;
  std::string bytes;
  bytes.reserve(kTokenShardHeaderBytes + tokens.size() * 2);
  bytes.append(reinterpret_cast<const char*>(header), sizeof(header));
  bytes.append(reinterpret_cast<const char*>(tokens.data()),
               tokens.size() * sizeof(uint16_t));
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<std::unique_ptr<TokenShardReader>> TokenShardReader::Open(
    const std::string& path, bool verify_checksum) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg =
        absl::StrCat("token shard '", path, "': open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("token shard '", path,
                                            "': fstat: ", std::strerror(err)));
  }
  const int64_t size = st.st_size;
  if (size < kTokenShardHeaderBytes) {
    ::close(fd);
    return ShardError(path, absl::StrCat("file is ", size,
                                         " bytes, shorter than the ",
                                         kTokenShardHeaderBytes,
                                         "-byte header (truncated?)"));
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED,
                     fd, 0);
  int map_err = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("token shard '", path,
                                            "': mmap: ", std::strerror(map_err)));
  }
  std::unique_ptr<TokenShardReader> r(new TokenShardReader());
  r->path_ = path;
  r->map_ = map;
  r->map_size_ = static_cast<size_t>(size);

  int32_t header[kTokenShardHeaderInts];
  std::memcpy(header, map, sizeof(header));
  if (header[0] != kTokenShardMagic) {
    return ShardError(path, absl::StrCat("bad magic ", header[0], " (expected ",
                                         kTokenShardMagic,
                                         "); not a token shard"));
  }
  if (header[1] != kTokenShardVersion) {
    return ShardError(path, absl::StrCat("unsupported version ", header[1],
                                         " (this reader handles version ",
                                         kTokenShardVersion, ")"));
  }
  if (header[2] < 0) {
    return ShardError(path, absl::StrCat("negative token count ", header[2]));
  }
  const int64_t n = header[2];
  const int64_t expected = kTokenShardHeaderBytes + 2 * n;
  if (expected != size) {
    return ShardError(
        path, absl::StrCat("header says ", n, " tokens, so the file should be ",
                           expected, " bytes, but it is ", size, " bytes",
                           size < expected ? " (truncated?)" : ""));
  }
  r->num_tokens_ = n;
  r->tokens_ = reinterpret_cast<const uint16_t*>(
      static_cast<const char*>(map) + kTokenShardHeaderBytes);
  r->has_checksum_ = header[4] == 1;
  r->vocab_size_ = header[5] > 0 ? header[5] : 0;
  if (r->has_checksum_ && verify_checksum) {
    uint32_t want = static_cast<uint32_t>(header[3]);
    uint32_t got = Crc32c(r->tokens_, static_cast<size_t>(n) * 2);
    if (want != got) {
      return ShardError(path, absl::StrCat("token checksum mismatch: header "
                                           "CRC32C 0x",
                                           absl::Hex(want, absl::kZeroPad8),
                                           ", data 0x",
                                           absl::Hex(got, absl::kZeroPad8),
                                           " (corrupted file)"));
    }
  }
  return r;
}

TokenShardReader::~TokenShardReader() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

absl::StatusOr<std::vector<std::string>> ExpandShardPattern(
    const std::string& pattern) {
  glob_t g;
  std::memset(&g, 0, sizeof(g));
  int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  if (rc == GLOB_NOMATCH || (rc == 0 && out.empty())) {
    return absl::NotFoundError(
        absl::StrCat("no files match pattern '", pattern, "'"));
  }
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("glob('", pattern, "') failed with code ", rc));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace data
}  // namespace loom
