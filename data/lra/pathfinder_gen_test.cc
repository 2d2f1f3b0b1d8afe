#include "data/lra/pathfinder_gen.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "data/lra/png_io.h"
#include "gtest/gtest.h"

namespace loom::data::lra {
namespace {

using Point = std::array<int, 2>;

// Bresenham (8-connected, both ends).
template <typename F>
void Segment(Point a, Point b, F&& put) {
  int dx = std::abs(b[1] - a[1]), dy = -std::abs(b[0] - a[0]);
  const int sx = a[1] < b[1] ? 1 : -1, sy = a[0] < b[0] ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put(a[0], a[1]);
    if (a == b) break;
    const int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      a[1] += sx;
    }
    if (e2 <= dx) {
      err += dx;
      a[0] += sy;
    }
  }
}

// The centre line of one contour (its dashes and the gaps between them) as a pixel mask.
std::vector<char> Rasterise(const std::vector<Point>& poly, int n) {
  std::vector<char> m(static_cast<size_t>(n) * n, 0);
  for (size_t i = 0; i + 1 < poly.size(); ++i) {
    Segment(poly[i], poly[i + 1], [&](int y, int x) {
      if (y >= 0 && y < n && x >= 0 && x < n) m[static_cast<size_t>(y) * n + x] = 1;
    });
  }
  return m;
}

// 8-connected flood fill from `from` over pixels with on[i]; true if `to` is reached.
bool Connected(int n, Point from, Point to, const std::vector<char>& on) {
  std::vector<char> seen(on.size(), 0);
  std::deque<int> q;
  const int start = from[0] * n + from[1];
  if (!on[start]) return false;
  seen[start] = 1;
  q.push_back(start);
  while (!q.empty()) {
    const int p = q.front();
    q.pop_front();
    const int y = p / n, x = p % n;
    if (y == to[0] && x == to[1]) return true;
    for (int dy = -1; dy <= 1; ++dy) {
      for (int dx = -1; dx <= 1; ++dx) {
        const int yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= n || xx < 0 || xx >= n) continue;
        const int i = yy * n + xx;
        if (!seen[i] && on[i]) {
          seen[i] = 1;
          q.push_back(i);
        }
      }
    }
  }
  return false;
}

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  std::filesystem::remove_all(dir);
  return dir;
}

// Every generated image, at every resolution: geometry, labels, markers and the pixels agree
// with what the generator says it drew.
TEST(PathfinderTest, ImagesAtEveryResolution) {
  for (int res : {32, 64, 128, 256}) {
    SCOPED_TRACE(absl::StrCat("resolution ", res));
    PathfinderOptions opt;
    opt.resolution = res;
    absl::StatusOr<PathfinderParams> params = PathfinderParamsFor(opt);
    ASSERT_TRUE(params.ok()) << params.status();
    std::mt19937_64 rng(1000 + res);
    const int n_img = std::getenv("PF_MANY") ? 400 : res == 32 ? 40 : res == 64 ? 16 : 10;
    int negatives_reached = 0;
    for (int i = 0; i < n_img; ++i) {
      SCOPED_TRACE(absl::StrCat("image ", i));
      const bool positive = i % 2 == 0;
      absl::StatusOr<PathfinderImage> im = DrawPathfinderImage(opt, positive, rng);
      ASSERT_TRUE(im.ok()) << im.status();
      const int n = res;
      const std::vector<uint8_t>& px = im->image.pixels;
      ASSERT_EQ(im->image.height, n);
      ASSERT_EQ(im->image.width, n);
      ASSERT_EQ(px.size(), static_cast<size_t>(n) * n);
      ASSERT_EQ(im->owner.size(), px.size());
      ASSERT_EQ(im->marker.size(), px.size());
      EXPECT_EQ(im->label, positive ? 1 : 0);
      EXPECT_NE(std::find(params->paddle_margin_list.begin(), params->paddle_margin_list.end(),
                          im->margin),
                params->paddle_margin_list.end());

      // Contours: two targets of contour_length dashes, then complete distractors.
      ASSERT_EQ(im->contours.size(), 2u + im->num_distractors_drawn);
      EXPECT_LE(im->num_distractors_drawn, params->num_distractor_snakes);
      for (size_t c = 0; c < im->contours.size(); ++c) {
        const int dashes = c < 2 ? params->contour_length : params->distractor_length;
        ASSERT_EQ(im->contours[c].size(), 2u * dashes) << "contour " << c;
        // Consecutive dashes are one step apart: the gap is about 2 * margin.
        for (size_t k = 1; k + 1 < im->contours[c].size(); k += 2) {
          const Point a = im->contours[c][k], b = im->contours[c][k + 1];
          EXPECT_LE(std::max(std::abs(a[0] - b[0]), std::abs(a[1] - b[1])), 2 * im->margin + 3)
              << "contour " << c << " gap after dash " << k / 2;
        }
      }

      // Markers: origin at the first tail of one target, terminal at the last head of the same
      // target (positive) or of the other one (negative).
      ASSERT_TRUE(im->origin_contour == 0 || im->origin_contour == 1);
      ASSERT_TRUE(im->terminal_contour == 0 || im->terminal_contour == 1);
      EXPECT_EQ(im->origin_contour == im->terminal_contour, positive);
      EXPECT_EQ(im->origin_marker, im->contours[im->origin_contour].front());
      EXPECT_EQ(im->terminal_marker, im->contours[im->terminal_contour].back());
      // Flood fill along the origin contour's centre line: always reaches the terminal marker
      // of a positive. For a negative it should not, but at 32 and 64 px (margin 1) the
      // reference's contours may pass through each other's gaps, so rarely the other target's
      // end lies on it: counted below.
      const std::vector<char> line = Rasterise(im->contours[im->origin_contour], n);
      const bool reached = Connected(n, im->origin_marker, im->terminal_marker, line);
      if (positive) {
        EXPECT_TRUE(reached);
      } else {
        negatives_reached += reached;
      }

      // Pixels: per-image min/max rescaling; a pixel is lit exactly where a dash or a marker was
      // drawn; each dash's centre segment is lit (within one pixel: the reference rounds dash
      // ends up at the finer resolution); markers are bright.
      EXPECT_EQ(*std::min_element(px.begin(), px.end()), 0);
      EXPECT_EQ(*std::max_element(px.begin(), px.end()), 255);
      int mismatched = 0;
      for (size_t p = 0; p < px.size(); ++p) {
        const bool drawn = im->owner[p] != 0 || im->marker[p] != 0;
        mismatched += drawn != (px[p] != 0);
      }
      EXPECT_EQ(mismatched, 0);
      for (size_t c = 0; c < im->contours.size(); ++c) {
        const auto& poly = im->contours[c];
        for (size_t k = 0; k + 1 < poly.size(); k += 2) {
          Segment(poly[k], poly[k + 1], [&](int y, int x) {
            if (y < 0 || y >= n || x < 0 || x >= n) return;
            bool lit = false;
            for (int dy = -1; dy <= 1; ++dy) {
              for (int dx = -1; dx <= 1; ++dx) {
                const int yy = y + dy, xx = x + dx;
                if (yy >= 0 && yy < n && xx >= 0 && xx < n) lit |= px[yy * n + xx] > 0;
              }
            }
            EXPECT_TRUE(lit) << "contour " << c << " dash " << k / 2 << " at " << y << "," << x;
          });
        }
      }
      EXPECT_GE(px[im->origin_marker[0] * n + im->origin_marker[1]], 200);
      EXPECT_GE(px[im->terminal_marker[0] * n + im->terminal_marker[1]], 200);
    }
    EXPECT_LE(negatives_reached, res <= 64 ? n_img / 10 : 0);
    std::printf("resolution %d: %d of %d negatives with the terminal marker on the origin "
                "contour's centre line\n", res, negatives_reached, n_img / 2);
  }
}

TEST(PathfinderTest, DrawIsDeterministic) {
  for (int res : {32, 128}) {
    PathfinderOptions opt;
    opt.resolution = res;
    std::mt19937_64 a(7), b(7), c(8);
    for (int i = 0; i < 3; ++i) {
      auto x = DrawPathfinderImage(opt, i % 2 == 0, a);
      auto y = DrawPathfinderImage(opt, i % 2 == 0, b);
      auto z = DrawPathfinderImage(opt, i % 2 == 0, c);
      ASSERT_TRUE(x.ok() && y.ok() && z.ok());
      EXPECT_EQ(x->image.pixels, y->image.pixels);
      EXPECT_EQ(x->contours, y->contours);
      EXPECT_EQ(x->owner, y->owner);
      EXPECT_NE(x->image.pixels, z->image.pixels);
    }
  }
}

TEST(PathfinderTest, ParamsPerResolutionAndDifficulty) {
  PathfinderOptions opt;
  opt.resolution = 32;
  opt.contour_length = 14;
  auto p = PathfinderParamsFor(opt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->distractor_length, 4);
  EXPECT_EQ(p->num_distractor_snakes, 5);  // 20 // 4
  EXPECT_EQ(p->continuity_text, "1.0");
  EXPECT_EQ(p->paddle_thickness_text, "0.5");
  opt.contour_length = 6;
  p = PathfinderParamsFor(opt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->distractor_length, 2);
  EXPECT_EQ(p->num_distractor_snakes, 10);
  EXPECT_EQ(PathfinderDifficultyName(6), "curv_baseline");
  EXPECT_EQ(PathfinderDifficultyName(9), "curv_contour_length_9");
  EXPECT_EQ(PathfinderDifficultyName(14), "curv_contour_length_14");
  struct Row {
    int res, num_distractors, padding, seed_distance;
    const char* thickness;
  };
  for (const Row& r : {Row{64, 5, 1, 12, "1"}, Row{128, 8, 1, 20, "1.5"},
                       Row{256, 7, 22, 27, "2"}}) {
    opt.resolution = r.res;
    opt.contour_length = 14;
    p = PathfinderParamsFor(opt);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->num_distractor_snakes, r.num_distractors) << r.res;
    EXPECT_EQ(p->padding, r.padding) << r.res;
    EXPECT_EQ(p->seed_distance, r.seed_distance) << r.res;
    EXPECT_EQ(p->paddle_thickness_text, r.thickness) << r.res;
    EXPECT_EQ(p->continuity_text, "1.8") << r.res;
  }
  opt.resolution = 48;
  EXPECT_FALSE(PathfinderParamsFor(opt).ok());
  opt.resolution = 32;
  opt.contour_length = 2;
  EXPECT_FALSE(PathfinderParamsFor(opt).ok());
}

// Reads every file below `dir` (relative name -> bytes).
std::map<std::string, std::string> ReadTree(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    auto bytes = ReadFileToString(e.path().string());
    EXPECT_TRUE(bytes.ok());
    out[std::filesystem::relative(e.path(), dir).string()] = bytes.ok() ? *bytes : "";
  }
  return out;
}

TEST(PathfinderTest, GenerateWritesReleaseLayoutDeterministically) {
  const std::string a = TempDir("pf_a"), b = TempDir("pf_b");
  PathfinderOptions opt;
  opt.resolution = 32;
  opt.num_images = 23;
  opt.images_per_dir = 10;
  opt.seed = 5;
  opt.num_threads = 2;
  // A stale metadata file from an earlier, larger run must go.
  ASSERT_TRUE(MakeDirs(a + "/curv_contour_length_14/metadata").ok());
  ASSERT_TRUE(WriteFileAtomically(a + "/curv_contour_length_14/metadata/7.npy", "x\n").ok());
  std::vector<int64_t> seen;
  ASSERT_TRUE(GeneratePathfinder(opt, a, [&](int64_t done, int64_t total) {
                EXPECT_EQ(total, 23);
                seen.push_back(done);
              }).ok());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 23);
  opt.num_threads = 1;
  ASSERT_TRUE(GeneratePathfinder(opt, b).ok());
  const auto ta = ReadTree(a), tb = ReadTree(b);
  EXPECT_EQ(ta, tb);  // byte-identical, whatever the number of threads
  EXPECT_EQ(ta.size(), 23u + 3u);
  EXPECT_EQ(ta.count("curv_contour_length_14/metadata/7.npy"), 0u);

  const std::string root = a + "/curv_contour_length_14";
  int labels[2] = {0, 0};
  for (int k = 0; k < 3; ++k) {
    auto text = ReadFileToString(absl::StrCat(root, "/metadata/", k, ".npy"));
    ASSERT_TRUE(text.ok());
    ASSERT_FALSE(text->empty());
    EXPECT_EQ(text->back(), '\n');
    std::vector<std::string> lines = absl::StrSplit(*text, '\n');
    lines.pop_back();
    ASSERT_EQ(lines.size(), k < 2 ? 10u : 3u);
    for (size_t i = 0; i < lines.size(); ++i) {
      std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
      ASSERT_EQ(f.size(), 11u) << lines[i];
      EXPECT_EQ(f[0], absl::StrCat("imgs/", k));
      EXPECT_EQ(f[1], absl::StrCat("sample_", i, ".png"));
      EXPECT_EQ(f[2], absl::StrCat(i));
      ASSERT_TRUE(f[3] == "0" || f[3] == "1") << lines[i];
      ++labels[f[3][0] - '0'];
      EXPECT_EQ(absl::StrJoin(std::vector<std::string>(f.begin() + 4, f.end()), " "),
                "1.0 14 4 2 0.5 1 1");
      auto img = ReadGrayPng(absl::StrCat(root, "/", f[0], "/", f[1]));
      ASSERT_TRUE(img.ok()) << img.status();
      EXPECT_EQ(img->height, 32);
      EXPECT_EQ(img->width, 32);
    }
  }
  EXPECT_GT(labels[0], 0);
  EXPECT_GT(labels[1], 0);

  // Another seed gives other images.
  const std::string c = TempDir("pf_c");
  opt.seed = 6;
  opt.num_images = 3;
  ASSERT_TRUE(GeneratePathfinder(opt, c).ok());
  const auto tc = ReadTree(c);
  EXPECT_NE(tc.at("curv_contour_length_14/imgs/0/sample_0.png"),
            ta.at("curv_contour_length_14/imgs/0/sample_0.png"));
}

TEST(PathfinderTest, GenerateOtherDifficultyAndResolution) {
  const std::string dir = TempDir("pf_64");
  PathfinderOptions opt;
  opt.resolution = 64;
  opt.contour_length = 6;
  opt.num_images = 4;
  ASSERT_TRUE(GeneratePathfinder(opt, dir).ok());
  auto text = ReadFileToString(dir + "/curv_baseline/metadata/0.npy");
  ASSERT_TRUE(text.ok());
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  std::vector<std::string> f = absl::StrSplit(lines[0], ' ');
  ASSERT_EQ(f.size(), 11u);
  EXPECT_EQ(absl::StrJoin(std::vector<std::string>(f.begin() + 4, f.end()), " "),
            "1.8 6 2 5 1 1 1");
  auto img = ReadGrayPng(dir + "/curv_baseline/imgs/0/sample_3.png");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->height, 64);
}

TEST(PathfinderTest, GenerateRejectsBadOptions) {
  PathfinderOptions opt;
  opt.num_images = 0;
  EXPECT_EQ(GeneratePathfinder(opt, TempDir("pf_bad")).code(),
            absl::StatusCode::kInvalidArgument);
  opt.num_images = 3;
  opt.images_per_dir = 0;
  EXPECT_EQ(GeneratePathfinder(opt, TempDir("pf_bad")).code(),
            absl::StatusCode::kInvalidArgument);
  opt.images_per_dir = 10;
  opt.resolution = 100;
  EXPECT_EQ(GeneratePathfinder(opt, TempDir("pf_bad")).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loom::data::lra
