#include "core/tensorboard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/crc32c.h"
#include "core/file_io.h"
#include "core/status_macros.h"

namespace loom {
namespace {

absl::Status ErrnoError(int err, absl::string_view op, const std::string& path) {
  std::string msg = absl::StrCat("TensorBoard event file: ", op, " '", path,
                                 "': ", std::strerror(err));
  if (err == ENOSPC) return absl::ResourceExhaustedError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

double WallTime() {
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

std::string HostName() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string host(buf);
  std::replace(host.begin(), host.end(), '/', '_');
  return host;
}

void PutLittleEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

namespace internal {

uint32_t MaskTfRecordCrc(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string FrameTfRecord(absl::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  PutLittleEndian(&out, data.size(), 8);
  PutLittleEndian(&out, MaskTfRecordCrc(Crc32c(out.data(), 8)), 4);
  out.append(data.data(), data.size());
  PutLittleEndian(&out, MaskTfRecordCrc(Crc32c(data.data(), data.size())), 4);
  return out;
}

}  // namespace internal

const std::vector<double>& DefaultHistogramBucketLimits() {
  static const std::vector<double>* const limits = [] {
    std::vector<double> pos;
    for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) pos.push_back(v);
    pos.push_back(DBL_MAX);
    auto* all = new std::vector<double>;
    all->reserve(2 * pos.size() + 1);
    for (auto it = pos.rbegin(); it != pos.rend(); ++it) all->push_back(-*it);
    all->push_back(0.0);
    all->insert(all->end(), pos.begin(), pos.end());
    return all;
  }();
  return *limits;
}

absl::StatusOr<tensorboard::HistogramProto> MakeTensorBoardHistogram(
    const std::vector<float>& values) {
  const std::vector<double>& limits = DefaultHistogramBucketLimits();
  std::vector<double> counts(limits.size(), 0.0);
  double min = DBL_MAX, max = -DBL_MAX, sum = 0, sum_squares = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram value ", i, " is ", v, " (only finite values can be binned)"));
    }
    // First limit > v. The last limit is DBL_MAX > every finite float, so b is in range.
    size_t b = std::upper_bound(limits.begin(), limits.end(), v) - limits.begin();
    counts[b] += 1.0;
    min = std::min(min, v);
    max = std::max(max, v);
    sum += v;
    sum_squares += v * v;
  }
  tensorboard::HistogramProto h;
  if (values.empty()) {
    min = max = 0.0;
  }
  h.set_min(min);
  h.set_max(max);
  h.set_num(static_cast<double>(values.size()));
  h.set_sum(sum);
  h.set_sum_squares(sum_squares);
  // As TensorFlow's EncodeToProto(preserve_zero_buckets=false): a run of empty buckets becomes
  // one empty bucket ending at the run's last limit.
  for (size_t i = 0; i < counts.size();) {
    double end = limits[i];
    double count = counts[i];
    ++i;
    if (count <= 0.0) {
      while (i < counts.size() && counts[i] <= 0.0) end = limits[i++];
    }
    h.add_bucket_limit(end);
    h.add_bucket(count);
  }
  return h;
}

absl::StatusOr<std::unique_ptr<TensorBoardWriter>> TensorBoardWriter::Open(
    const std::string& dir) {
  LOOM_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string stem =
      absl::StrCat(dir, "/events.out.tfevents.", static_cast<int64_t>(::time(nullptr)), ".",
                   HostName(), ".", static_cast<int64_t>(::getpid()));
  std::string path;
  int fd = -1;
  for (int n = 1; fd < 0; ++n) {
    path = n == 1 ? absl::StrCat(stem, ".loom") : absl::StrFormat("%s.loom.%03d", stem, n);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 && (errno != EEXIST || n >= 999)) return ErrnoError(errno, "create", path);
  }
  std::unique_ptr<TensorBoardWriter> writer(new TensorBoardWriter(path, fd));
  tensorboard::Event event;
  event.set_file_version("brain.Event:2");
  LOOM_RETURN_IF_ERROR(writer->WriteEvent(std::move(event)));
  return writer;
}

TensorBoardWriter::~TensorBoardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status TensorBoardWriter::WriteEvent(tensorboard::Event event) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("TensorBoard event file '", path_, "' is closed"));
  }
  if (event.wall_time() == 0) event.set_wall_time(WallTime());
  std::string data;
  if (!event.SerializeToString(&data)) {
    return absl::InternalError(
        absl::StrCat("TensorBoard event file '", path_, "': cannot serialize an event"));
  }
  const std::string record = internal::FrameTfRecord(data);
  const char* p = record.data();
  size_t left = record.size();
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path_);
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status TensorBoardWriter::AddScalar(const std::string& tag, double value,
                                          int64_t step) {
  tensorboard::Event event;
  event.set_step(step);
  tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  return WriteEvent(std::move(event));
}

absl::Status TensorBoardWriter::AddHistogram(const std::string& tag,
                                             const std::vector<float>& values,
                                             int64_t step) {
  absl::StatusOr<tensorboard::HistogramProto> histo = MakeTensorBoardHistogram(values);
  if (!histo.ok()) {
    return absl::Status(histo.status().code(),
                        absl::StrCat("TensorBoard event file '", path_, "', histogram '", tag,
                                     "': ", histo.status().message()));
  }
  tensorboard::Event event;
  event.set_step(step);
  tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  *v->mutable_histo() = *std::move(histo);
  return WriteEvent(std::move(event));
}

absl::Status TensorBoardWriter::Flush() {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("TensorBoard event file '", path_, "' is closed"));
  }
  if (::fsync(fd_) != 0) return ErrnoError(errno, "fsync", path_);
  return absl::OkStatus();
}

absl::Status TensorBoardWriter::Close() {
  LOOM_RETURN_IF_ERROR(Flush());
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoError(errno, "close", path_);
  return absl::OkStatus();
}

}  // namespace loom
