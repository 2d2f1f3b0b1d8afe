// Pathfinder generator (Linsley et al. 2018, Kim et al. 2020) in the layout of the Long Range
// Arena release (specs/lra_spt.md §1.5 and §2.2, after drewlinsley/pathfinder snakes2.py +
// snakes.py @ ab9c130 and the per-resolution settings of lra_benchmarks/data/pathfinder.py).
//
//   PathfinderOptions opt;
//   opt.resolution = 32;           // 32, 64, 128 or 256
//   opt.contour_length = 14;       // 6 = curv_baseline, 9, 14 = curv_contour_length_{9,14}
//   opt.num_images = 200000;
//   LOOM_RETURN_IF_ERROR(GeneratePathfinder(opt, "lra/pathfinder32"));
//   // -> lra/pathfinder32/curv_contour_length_14/imgs/<k>/sample_<i>.png
//   //    lra/pathfinder32/curv_contour_length_14/metadata/<k>.npy   (plain text, see below)
//
// Every image: two target contours of `contour_length` dashes grown in lockstep from seeds
// `seed_distance` apart, `num_distractor_snakes` distractor contours of `distractor_length`
// dashes, and two disk markers: at the first tail of one target and at the last head of the same
// target (positive, label 1) or of the other one (negative, label 0). Dashes are drawn at
// `antialias_scale` times the resolution (Pillow's line rasteriser) and Lanczos-downsampled
// (Pillow's 8-bit resampler), with margin masks that keep contours apart, exactly as the
// reference. The saved PNG is the reference's scipy.misc.imsave output: the image is min/max
// rescaled per image to 0..255 and rounded (so at 32 px, where distractors are brighter than the
// markers, the brightest distractor is 255).
//
// Metadata: one text line per image, "imgs/<k> sample_<i>.png <i> <label> <continuity>
// <contour_length> <distractor_length> <paddle_length> <paddle_thickness> <paddle_margin>
// <num_paddle_contrasts>", e.g. "imgs/0 sample_3.png 3 1 1.0 14 4 2 0.5 1 1" (numbers printed as
// the Python 2 reference printed them).
//
// Speed (this machine, 2 threads, PNG writing included): 1000 images take about 0.7 s at 32 px,
// 13 s at 64, 11 s at 128 and 6 s at 256. At 64 and 128 most of it is the reference's
// rejection loop: two 14-dash targets rarely both fit, ~1000 / ~300 attempts per image.
//
// Determinism: image j (0-based over the whole run) is drawn from its own
// std::mt19937_64(SplitMix64(seed, j)) with fully specified sampling helpers, so a seed gives
// byte-identical files whatever the number of threads.
#ifndef LOOM_DATA_LRA_PATHFINDER_GEN_H_
#define LOOM_DATA_LRA_PATHFINDER_GEN_H_

#include <array>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/lra/png_io.h"

namespace loom::data::lra {

struct PathfinderOptions {
  int resolution = 32;      // 32, 64, 128, 256
  int contour_length = 14;  // dashes per target contour: 6 (baseline), 9, 14 (hard); 3..30
  int64_t num_images = 0;
  int64_t images_per_dir = 1000;  // images per imgs/<k> and metadata/<k>.npy
  uint64_t seed = 0;
  int num_threads = 0;            // 0: all hardware threads
  // -1: the per-resolution default, floor(K / distractor_length) with K = 20, 22, 35, 30 for
  // 32, 64, 128, 256, recomputed for each difficulty.
  int num_distractor_snakes = -1;
};

// The generator settings for one resolution and difficulty (specs/lra_spt.md §2.2.1).
struct PathfinderParams {
  int window = 32;
  int padding = 1;
  int antialias_scale = 2;
  std::vector<int> paddle_margin_list;
  int seed_distance = 7;
  double marker_radius = 1.5;
  int contour_length = 14;
  int distractor_length = 4;
  int num_distractor_snakes = 5;
  int paddle_length = 2;
  double paddle_thickness = 0.5;
  double continuity = 1.0;
  std::vector<double> snake_contrast_list;
  std::vector<double> paddle_contrast_list;
  int max_target_contour_retrial = 4;  // unused: snakes2.py retries the target pair unboundedly
  int max_distractor_contour_retrial = 4;
  int max_paddle_retrial = 2;
  // As the Python 2 reference prints them in the metadata ("1.0", "1.8", "0.5", "1", ...).
  std::string continuity_text;
  std::string paddle_thickness_text;
};

absl::StatusOr<PathfinderParams> PathfinderParamsFor(const PathfinderOptions& options);

// "curv_baseline" for contour length 6, else "curv_contour_length_<n>".
std::string PathfinderDifficultyName(int contour_length);

struct PathfinderImage {
  GrayImage image;  // resolution x resolution, as saved
  int label = 0;    // 1: both markers on the same contour
  int margin = 0;   // paddle margin used for this image
  // Centre-line vertices (row, col) of every contour drawn: [0] and [1] the two targets, then
  // the distractors. Vertices 2i and 2i+1 are the two ends of dash i in growth order, so the
  // first vertex is the contour's first tail and the last its last head; the segments in between
  // (2i+1, 2i+2) cross the gaps between consecutive dashes.
  std::vector<std::vector<std::array<int, 2>>> contours;
  // Per pixel (row-major): 1 + the index into `contours` of the contour whose dashes are
  // brightest there before rescaling; 0 where no dash reaches.
  std::vector<int16_t> owner;
  // Per pixel: 1 where a marker disk reaches.
  std::vector<uint8_t> marker;
  // Marker centres (row, col): the origin marker at the first tail of contours[origin_contour],
  // the terminal marker at the last head of contours[terminal_contour] (0 or 1).
  std::array<int, 2> origin_marker{};
  std::array<int, 2> terminal_marker{};
  int origin_contour = 0;
  int terminal_contour = 0;
  int num_distractors_drawn = 0;
};

// Draws one image with the given label from `rng`. Fails only on invalid options or when the
// two targets cannot be placed after very many attempts.
absl::StatusOr<PathfinderImage> DrawPathfinderImage(const PathfinderOptions& options,
                                                    bool positive, std::mt19937_64& rng);

// Writes options.num_images images (label: a fair coin per image, as the reference) under
// out_dir/<difficulty>/ and the metadata files; stale metadata/<k>.npy files of an earlier,
// larger run are removed. `progress(done, total)` is called from the calling thread.
absl::Status GeneratePathfinder(
    const PathfinderOptions& options, const std::string& out_dir,
    const std::function<void(int64_t done, int64_t total)>& progress = nullptr);

}  // namespace loom::data::lra

#endif  // LOOM_DATA_LRA_PATHFINDER_GEN_H_
