// 8-bit grayscale PNG files, the format of the LRA Pathfinder images (libpng's simplified API).
//
//   LOOM_ASSIGN_OR_RETURN(GrayImage img, ReadGrayPng("pathfinder32/.../sample_0.png"));
//   LOOM_RETURN_IF_ERROR(WriteGrayPng(path, img));     // atomic (temporary file + rename)
//
// Colour or 16-bit files are converted to 8-bit gray on read (libpng's rules). An empty or
// truncated file (the release holds one) is an error naming the file.
#ifndef LOOM_DATA_LRA_PNG_IO_H_
#define LOOM_DATA_LRA_PNG_IO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loom::data::lra {

struct GrayImage {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;  // row-major, height * width
};

absl::StatusOr<GrayImage> ReadGrayPng(const std::string& path);
absl::StatusOr<GrayImage> DecodeGrayPng(const std::string& bytes, const std::string& name);
absl::Status WriteGrayPng(const std::string& path, const GrayImage& image);

}  // namespace loom::data::lra

#endif  // LOOM_DATA_LRA_PNG_IO_H_
