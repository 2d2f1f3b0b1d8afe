// TensorBoard event files written by Loom itself (no TensorFlow, no Python).
//
//   LOOM_ASSIGN_OR_RETURN(auto tb, TensorBoardWriter::Open(run_dir + "/tensorboard"));
//   LOOM_RETURN_IF_ERROR(tb->AddScalar("train/loss", loss, step));
//   LOOM_RETURN_IF_ERROR(tb->AddHistogram("weights/fc1", values, step));
//   LOOM_RETURN_IF_ERROR(tb->Flush());
//
// File name: Open(dir) creates `dir` if needed (mkdir -p) and a new file
//   <dir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.loom
// (if that name exists already, e.g. a second writer in the same process and second, the
// name gets a suffix `.002`, `.003`, ... up to `.999`, which sorts after it). A file is never
// reopened: a resumed run writes a new file next to the old ones and TensorBoard merges every
// event file of a directory, read in file name order (= creation order), into one run; a
// step that goes backwards (a resumed run re-logging steps after its checkpoint) makes
// TensorBoard drop the older events of that tag from that step on.
//
// File format: a TFRecord file, i.e. a sequence of records, each
//   uint64  length of `data`, little-endian
//   uint32  masked CRC-32C of the 8 length bytes, little-endian
//   byte    data[length]                 a serialized loom.tensorboard.Event
//   uint32  masked CRC-32C of data, little-endian
// where CRC-32C is core/crc32c.h (Castagnoli) and
//   masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8   (mod 2^32).
// The first record is an Event with `file_version: "brain.Event:2"`; each AddScalar or
// AddHistogram call appends one Event {wall_time, step, summary {value {tag, ...}}}. Scalars
// are stored as `simple_value` (float32, as TensorBoard does). Event and Summary are a
// wire-compatible subset of TensorFlow's protos: core/tensorboard_event.proto.
//
// Records go to the file with one write(2) each, so TensorBoard sees them while the run is
// going; Flush() additionally fsyncs. Errors name the file. Not thread-safe: one writer is
// used by one thread (rank 0).
#ifndef LOOM_CORE_TENSORBOARD_H_
#define LOOM_CORE_TENSORBOARD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensorboard_event.pb.h"

namespace loom {

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new event file in it (see above), and writes the
  // file_version record.
  static absl::StatusOr<std::unique_ptr<TensorBoardWriter>> Open(
      const std::string& dir);

  ~TensorBoardWriter();  // Closes the file (errors on close are lost; call Close() to see them).
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Appends a scalar (stored as float32). Non-finite values are written as they are
  // (TensorBoard shows NaN / Inf).
  absl::Status AddScalar(const std::string& tag, double value, int64_t step);

  // Appends a histogram of `values` over TensorFlow's default buckets (see
  // MakeTensorBoardHistogram). InvalidArgument if a value is NaN or infinite.
  absl::Status AddHistogram(const std::string& tag,
                            const std::vector<float>& values, int64_t step);

  // Appends an arbitrary event (wall_time is set to now if it is 0).
  absl::Status WriteEvent(tensorboard::Event event);

  // fsync: everything written so far is on disk.
  absl::Status Flush();

  // Flushes and closes; later calls fail with FailedPrecondition.
  absl::Status Close();

  // The event file's path.
  const std::string& path() const { return path_; }

 private:
  TensorBoardWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
};

// TensorFlow's default histogram bucket limits (tensorflow/core/lib/histogram/histogram.cc):
// -DBL_MAX, ..., -1e-12 * 1.1^k, ..., -1e-12, 0, 1e-12, ..., 1e-12 * 1.1^k (< 1e20), ...,
// DBL_MAX; 1551 increasing values.
const std::vector<double>& DefaultHistogramBucketLimits();

// The histogram TensorFlow's Histogram::EncodeToProto writes for `values` (as doubles):
// value v counts in the first bucket whose limit is > v, i.e. bucket i holds
// [limit[i-1], limit[i]); min, max, num, sum, sum_squares over the values; runs of empty
// buckets collapsed into one (limit of the run's last bucket, count 0). No values: num 0,
// min = max = 0 and one bucket (DBL_MAX, 0). InvalidArgument on a NaN or infinite value.
absl::StatusOr<tensorboard::HistogramProto> MakeTensorBoardHistogram(
    const std::vector<float>& values);

namespace internal {
// masked(crc) as above.
uint32_t MaskTfRecordCrc(uint32_t crc);
// One TFRecord record (framing above) around `data`.
std::string FrameTfRecord(absl::string_view data);
}  // namespace internal

}  // namespace loom

#endif  // LOOM_CORE_TENSORBOARD_H_
