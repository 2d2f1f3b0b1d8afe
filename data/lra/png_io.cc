#include "data/lra/png_io.h"

#include <png.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"

namespace loom::data::lra {

absl::StatusOr<GrayImage> DecodeGrayPng(const std::string& bytes, const std::string& name) {
  if (bytes.empty()) return absl::DataLossError(absl::StrCat(name, ": empty PNG file"));
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return absl::DataLossError(absl::StrCat(name, ": not a readable PNG (", image.message, ")"));
  }
  image.format = PNG_FORMAT_GRAY;
  GrayImage out;
  out.height = image.height;
  out.width = image.width;
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, /*background=*/nullptr, out.pixels.data(),
                             /*row_stride=*/0, /*colormap=*/nullptr)) {
    const std::string msg = image.message;
    png_image_free(&image);
    return absl::DataLossError(absl::StrCat(name, ": corrupt PNG (", msg, ")"));
  }
  return out;
}

absl::StatusOr<GrayImage> ReadGrayPng(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) return bytes.status();
  return DecodeGrayPng(*bytes, path);
}

absl::Status WriteGrayPng(const std::string& path, const GrayImage& img) {
  if (img.height <= 0 || img.width <= 0 ||
      static_cast<int64_t>(img.pixels.size()) != img.height * img.width) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": image is ", img.height, " x ",
                                                   img.width, " with ", img.pixels.size(),
                                                   " pixels"));
  }
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(img.width);
  image.height = static_cast<png_uint_32>(img.height);
  image.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  // First call sizes the buffer, second writes it.
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, img.pixels.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat(path, ": PNG encoding failed (", image.message, ")"));
  }
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, img.pixels.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat(path, ": PNG encoding failed (", image.message, ")"));
  }
  bytes.resize(size);
  return WriteFileAtomically(path, bytes);
}

}  // namespace loom::data::lra
