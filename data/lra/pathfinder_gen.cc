#include "data/lra/pathfinder_gen.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/file_io.h"

namespace loom::data::lra {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- Random numbers (fully specified, so a seed means the same images everywhere) -----------

uint64_t UniformInt(std::mt19937_64& rng, uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

// np.random.randint(lo, hi): uniform in [lo, hi).
int RandInt(std::mt19937_64& rng, int lo, int hi) {
  return lo + static_cast<int>(UniformInt(rng, static_cast<uint64_t>(hi - lo)));
}

double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// ---- Pillow primitives (libImaging/Draw.c and Resample.c as of Pillow 5/6) -----------------

// ROUND_UP / ROUND_DOWN of Draw.c for a float argument (f + 0.5F is float arithmetic there;
// fabs() promotes to double).
int RoundUpF(float f) {
  return static_cast<int>(f >= 0.0 ? std::floor(static_cast<double>(f + 0.5F))
                                   : -std::floor(std::fabs(static_cast<double>(f)) + 0.5));
}
int RoundDownF(float f) {
  return static_cast<int>(f >= 0.0 ? std::ceil(static_cast<double>(f - 0.5F))
                                   : -std::ceil(std::fabs(static_cast<double>(f)) - 0.5));
}
int RoundUpD(double f) {
  return static_cast<int>(f >= 0.0 ? std::floor(f + 0.5) : -std::floor(std::fabs(f) + 0.5));
}
int RoundDownD(double f) {
  return static_cast<int>(f >= 0.0 ? std::ceil(f - 0.5) : -std::ceil(std::fabs(f) - 0.5));
}

// A square 8-bit canvas (the reference draws on a float 'F' image, but only 0 and 255 occur).
struct Canvas {
  int size = 0;
  std::vector<uint8_t> px;
  explicit Canvas(int n) : size(n), px(static_cast<size_t>(n) * n, 0) {}
  void Point(int x, int y, uint8_t ink) {
    if (x >= 0 && x < size && y >= 0 && y < size) px[static_cast<size_t>(y) * size + x] = ink;
  }
  void HLine(int x0, int y0, int x1, uint8_t ink) {
    if (y0 < 0 || y0 >= size) return;
    if (x0 > x1) std::swap(x0, x1);
    if (x0 < 0) {
      x0 = 0;
    } else if (x0 >= size) {
      return;
    }
    if (x1 < 0) return;
    if (x1 >= size) x1 = size - 1;
    for (int x = x0; x <= x1; ++x) px[static_cast<size_t>(y0) * size + x] = ink;
  }
};

// line32(): Bresenham without the last point.
void PilLine(Canvas& c, int x0, int y0, int x1, int y1, uint8_t ink) {
  int dx = x1 - x0, dy = y1 - y0, xs = 1, ys = 1;
  if (dx < 0) dx = -dx, xs = -1;
  if (dy < 0) dy = -dy, ys = -1;
  if (dx == 0) {
    for (int i = 0; i < dy; ++i, y0 += ys) c.Point(x0, y0, ink);
  } else if (dy == 0) {
    for (int i = 0; i < dx; ++i, x0 += xs) c.Point(x0, y0, ink);
  } else if (dx > dy) {
    const int n = dx;
    dy += dy;
    int e = dy - dx;
    dx += dx;
    for (int i = 0; i < n; ++i) {
      c.Point(x0, y0, ink);
      if (e >= 0) {
        y0 += ys;
        e -= dx;
      }
      e += dy;
      x0 += xs;
    }
  } else {
    const int n = dy;
    dx += dx;
    int e = dx - dy;
    dy += dy;
    for (int i = 0; i < n; ++i) {
      c.Point(x0, y0, ink);
      if (e >= 0) {
        x0 += xs;
        e -= dy;
      }
      e += dx;
      y0 += ys;
    }
  }
}

struct Edge {
  int d;
  int x0, y0;
  int xmin, ymin, xmax, ymax;
  float dx;
};

void AddEdge(Edge* e, int x0, int y0, int x1, int y1) {
  if (x0 <= x1) {
    e->xmin = x0, e->xmax = x1;
  } else {
    e->xmin = x1, e->xmax = x0;
  }
  if (y0 <= y1) {
    e->ymin = y0, e->ymax = y1;
  } else {
    e->ymin = y1, e->ymax = y0;
  }
  if (y0 == y1) {
    e->d = 0;
    e->dx = 0.0f;
  } else {
    e->dx = static_cast<float>(x1 - x0) / static_cast<float>(y1 - y0);
    e->d = y0 == e->ymin ? 1 : -1;
  }
  e->x0 = x0;
  e->y0 = y0;
}

// polygon_generic(): scan-line fill.
void PilPolygon(Canvas& c, Edge* e, int n, uint8_t ink) {
  std::vector<Edge*> table;
  int ymin = c.size - 1, ymax = 0;
  for (int i = 0; i < n; ++i) {
    if (e[i].ymin == e[i].ymax) {
      c.HLine(e[i].xmin, e[i].ymin, e[i].xmax, ink);
      continue;
    }
    ymin = std::min(ymin, e[i].ymin);
    ymax = std::max(ymax, e[i].ymax);
    table.push_back(e + i);
  }
  if (ymin < 0) ymin = 0;
  if (ymax >= c.size) ymax = c.size - 1;
  std::vector<float> xx(table.size() * 2 + 2);
  for (; ymin <= ymax; ++ymin) {
    size_t j = 0;
    for (Edge* cur : table) {
      if (ymin >= cur->ymin && ymin <= cur->ymax) {
        xx[j++] = static_cast<float>(ymin - cur->y0) * cur->dx + static_cast<float>(cur->x0);
      }
      if (ymin == cur->ymax && ymin < ymax) {
        xx[j] = xx[j - 1];
        ++j;
      }
    }
    std::sort(xx.begin(), xx.begin() + j);
    for (size_t i = 1; i < j; i += 2) {
      c.HLine(RoundUpF(xx[i - 1]), ymin, RoundDownF(xx[i]), ink);
    }
  }
}

// ImageDraw.line([(x0, y0), (x1, y1)], width=w) on integer coordinates.
void PilDrawLine(Canvas& c, int x0, int y0, int x1, int y1, int width, uint8_t ink) {
  if (width <= 1) {
    PilLine(c, x0, y0, x1, y1, ink);
    c.Point(x1, y1, ink);
    return;
  }
  const int dx = x1 - x0, dy = y1 - y0;
  if (dx == 0 && dy == 0) {
    c.Point(x0, y0, ink);
    return;
  }
  const double big = std::sqrt(static_cast<double>(dx * dx + dy * dy));
  const double small = (width - 1) / 2.0;
  const double ratio_max = RoundUpD(small) / big;
  const double ratio_min = RoundDownD(small) / big;
  const int dxmin = RoundDownD(ratio_min * dy), dxmax = RoundDownD(ratio_max * dy);
  const int dymin = RoundDownD(ratio_min * dx), dymax = RoundDownD(ratio_max * dx);
  const int v[4][2] = {{x0 - dxmin, y0 + dymax},
                       {x1 - dxmin, y1 + dymax},
                       {x1 + dxmax, y1 - dymin},
                       {x0 + dxmax, y0 - dymin}};
  Edge e[4];
  for (int i = 0; i < 4; ++i) AddEdge(e + i, v[i][0], v[i][1], v[(i + 1) % 4][0], v[(i + 1) % 4][1]);
  PilPolygon(c, e, 4, ink);
}

// Resample.c, Lanczos (support 3), 8 bits per channel with 22-bit fixed-point coefficients.
constexpr int kPrecisionBits = 32 - 8 - 2;

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}
double Lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return Sinc(x) * Sinc(x / 3);
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;   // per output: xmin, count
  std::vector<int32_t> kk;   // per output: ksize coefficients
};

Coeffs PrecomputeCoeffs(int in_size, int out_size) {
  Coeffs c;
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 3.0 * filterscale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.kk.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      const double w = Lanczos((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < c.ksize; ++x) {
      double v = 0.0;
      if (x < xmax) v = ww != 0.0 ? k[x] / ww : k[x];
      c.kk[static_cast<size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

uint8_t Clip8(int in) {
  if (in >= (1 << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

// Image.resize((out, out), Image.LANCZOS) of a square 8-bit image: horizontal pass, then
// vertical. Rows that are entirely zero give zero and are skipped.
std::vector<uint8_t> ResizeLanczos(const std::vector<uint8_t>& in, int in_size, int out_size,
                                   const Coeffs& c) {
  std::vector<uint8_t> tmp(static_cast<size_t>(in_size) * out_size, 0);  // in_size rows
  std::vector<char> row_nonzero(in_size, 0);
  for (int y = 0; y < in_size; ++y) {
    const uint8_t* row = &in[static_cast<size_t>(y) * in_size];
    bool any = false;
    for (int x = 0; x < in_size && !any; ++x) any = row[x] != 0;
    if (!any) continue;
    row_nonzero[y] = 1;
    for (int xx = 0; xx < out_size; ++xx) {
      const int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
      const int32_t* k = &c.kk[static_cast<size_t>(xx) * c.ksize];
      int ss = 1 << (kPrecisionBits - 1);
      for (int x = 0; x < xmax; ++x) ss += row[x + xmin] * k[x];
      tmp[static_cast<size_t>(y) * out_size + xx] = Clip8(ss);
    }
  }
  std::vector<uint8_t> out(static_cast<size_t>(out_size) * out_size, 0);
  for (int yy = 0; yy < out_size; ++yy) {
    const int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
    bool any = false;
    for (int y = 0; y < ymax && !any; ++y) any = row_nonzero[y + ymin] != 0;
    if (!any) continue;
    const int32_t* k = &c.kk[static_cast<size_t>(yy) * c.ksize];
    for (int xx = 0; xx < out_size; ++xx) {
      int ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += tmp[static_cast<size_t>(y + ymin) * out_size + xx] * k[y];
      out[static_cast<size_t>(yy) * out_size + xx] = Clip8(ss);
    }
  }
  return out;
}

// ---- snakes.py helpers -----------------------------------------------------------------------

struct Coord {
  int y = 0, x = 0;
};

// translate_coord(): each component rounded up.
Coord Translate(Coord c, double orientation, double dist) {
  return {static_cast<int>(std::ceil(c.y + dist * std::sin(orientation))),
          static_cast<int>(std::ceil(c.x + dist * std::cos(orientation)))};
}

double FlipByPi(double o) { return o < 0 ? o + kPi : o - kPi; }

// generate_dilation_struct(r) as offsets.
std::vector<Coord> DiskOffsets(int r) {
  std::vector<Coord> out;
  for (int y = -r; y <= r; ++y) {
    for (int x = -r; x <= r; ++x) {
      if (x * x + y * y <= r * r) out.push_back({y, x});
    }
  }
  return out;
}

// One dash as draw_line_n_mask() renders it, before placement: a (2K+1)^2 patch whose centre
// goes on the start coordinate, K = paddle_length + ceil(thickness) + margin.
struct DashShape {
  int half = 0;
  int size = 0;
  std::vector<uint8_t> line;  // Lanczos output (the reference divides by 255, times contrast)
  std::vector<float> mask;    // float32(u8 / 255), the margin-dilated occupancy
  Coord end;                  // low-resolution end point (translate_coord(start, o, length))
};

// Everything that depends only on the resolution settings and the margin, cached.
class ShapeCache {
 public:
  ShapeCache(const PathfinderParams& p, int margin)
      : p_(p), margin_(margin),
        half_(p.paddle_length + static_cast<int>(std::ceil(p.paddle_thickness)) + margin),
        big_(half_ * 2 * p.antialias_scale + 1),
        coeffs_(PrecomputeCoeffs(big_, half_ * 2 + 1)),
        large_disk_(DiskOffsets(margin * p.antialias_scale)),
        small_disk_(DiskOffsets(margin)) {
    const double r = p.paddle_length + margin;
    const double deg_per_pixel = 360. / (2 * r * kPi);
    const int64_t n = static_cast<int64_t>(std::ceil(360.0 / deg_per_pixel));
    for (int64_t i = 0; i < n; ++i) {
      const double rad = static_cast<double>(i) * deg_per_pixel * kPi / 180;
      circle_.dy.push_back(r * std::sin(rad));
      circle_.dx.push_back(r * std::cos(rad));
    }
    // Candidates are truncated toward zero from pivot + offset, so |displacement| <= r + 1.
    circle_.reach = static_cast<int>(r) + 2;
    const int w = 2 * circle_.reach + 1;
    circle_.atan2.resize(static_cast<size_t>(w) * w);
    for (int y = -circle_.reach; y <= circle_.reach; ++y) {
      for (int x = -circle_.reach; x <= circle_.reach; ++x) {
        circle_.atan2[static_cast<size_t>(y + circle_.reach) * w + (x + circle_.reach)] =
            std::atan2(static_cast<double>(y), static_cast<double>(x));
      }
    }
  }

  int margin() const { return margin_; }
  const std::vector<Coord>& small_disk() const { return small_disk_; }

  // get_coords_cmf()'s circle of radius r = paddle_length + margin: the offsets r sin(a),
  // r cos(a) for a = 0, 1 pixel of arc, ... < 360 degrees, and atan2 of integer displacements.
  struct Circle {
    std::vector<double> dy, dx;
    int reach = 0;
    std::vector<double> atan2;  // (2 reach + 1)^2, row-major over (dy, dx)
    double Atan2(int y, int x) const {
      return atan2[static_cast<size_t>(y + reach) * (2 * reach + 1) + (x + reach)];
    }
  };
  const Circle& circle() const { return circle_; }

  const DashShape& Dash(double orientation) {
    uint64_t key;
    std::memcpy(&key, &orientation, sizeof(key));
    auto it = dashes_.find(key);
    if (it != dashes_.end()) return *it->second;
    auto shape = std::make_unique<DashShape>(Render(orientation));
    const DashShape& ref = *shape;
    dashes_.emplace(key, std::move(shape));
    return ref;
  }

  // The seeding structuring element for an integer orientation in degrees: offsets o such that
  // a pixel p is blocked when lined_mask[p + o] is occupied (cv2.dilate, anchor at the centre).
  const std::vector<Coord>& SeedKernel(int degrees) {
    auto it = kernels_.find(degrees);
    if (it != kernels_.end()) return it->second;
    const double o = degrees * kPi / 180;
    const DashShape& d = Dash(o);
    const int lm = p_.paddle_length + margin_;
    const int n = 2 * lm + 1;        // struct_shape
    const int head = lm + 1;         // struct_head
    std::vector<Coord> k;
    for (int py = 0; py < d.size; ++py) {
      for (int px = 0; px < d.size; ++px) {
        const int sy = head - d.half + py, sx = head - d.half + px;
        if (sy < 0 || sy >= n || sx < 0 || sx >= n) continue;
        // struct.astype(np.uint8): only pixels at exactly 1.0 count.
        if (d.mask[static_cast<size_t>(py) * d.size + px] < 1.0f) continue;
        k.push_back({sy - lm, sx - lm});
      }
    }
    if (k.empty()) k.push_back({0, 0});  // never seen; keeps dilation well defined
    return kernels_.emplace(degrees, std::move(k)).first->second;
  }

  // Free pixels for the first target seed at `degrees`, computed by `make` once.
  template <typename Make>
  const std::vector<Coord>& FirstSeedFree(int degrees, Make&& make) {
    auto it = first_seed_free_.find(degrees);
    if (it != first_seed_free_.end()) return it->second;
    return first_seed_free_.emplace(degrees, make()).first->second;
  }
  bool HasFirstSeedFree() const { return first_seed_free_.size() == 360; }

 private:
  DashShape Render(double orientation) const {
    const int aa = p_.antialias_scale;
    const int center = half_ * aa;
    const int width = static_cast<int>(std::nearbyint(p_.paddle_thickness * aa));
    const Coord head = Translate({center, center}, orientation, p_.paddle_length * aa);
    Canvas line(big_);
    PilDrawLine(line, center, center, head.x, head.y, width, 255);
    // cv2.dilate with a disk of radius margin * aa (pixels outside the canvas do not count).
    Canvas dil(big_);
    for (int y = 0; y < big_; ++y) {
      for (int x = 0; x < big_; ++x) {
        if (line.px[static_cast<size_t>(y) * big_ + x] == 0) continue;
        for (const Coord& o : large_disk_) {
          const int yy = y + o.y, xx = x + o.x;
          if (yy >= 0 && yy < big_ && xx >= 0 && xx < big_) {
            dil.px[static_cast<size_t>(yy) * big_ + xx] = 255;
          }
        }
      }
    }
    DashShape d;
    d.half = half_;
    d.size = half_ * 2 + 1;
    d.line = ResizeLanczos(line.px, big_, d.size, coeffs_);
    const std::vector<uint8_t> m = ResizeLanczos(dil.px, big_, d.size, coeffs_);
    d.mask.resize(m.size());
    for (size_t i = 0; i < m.size(); ++i) d.mask[i] = static_cast<float>(m[i] / 255.0);
    d.end = Translate({0, 0}, orientation, p_.paddle_length);
    return d;
  }

  const PathfinderParams& p_;
  const int margin_;
  const int half_;
  const int big_;
  const Coeffs coeffs_;
  const std::vector<Coord> large_disk_;
  const std::vector<Coord> small_disk_;
  Circle circle_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<DashShape>> dashes_;
  absl::flat_hash_map<int, std::vector<Coord>> kernels_;
  absl::flat_hash_map<int, std::vector<Coord>> first_seed_free_;
};

// Per-thread caches of dash shapes, keyed by every setting that shapes a dash.
ShapeCache& CacheFor(const PathfinderParams& p, int margin) {
  using Key = std::tuple<int, int, int, int, double, int, int>;
  thread_local std::map<Key, std::pair<std::unique_ptr<PathfinderParams>,
                                       std::unique_ptr<ShapeCache>>> caches;
  const Key key{p.window,         p.padding,         p.seed_distance, p.paddle_length,
                p.paddle_thickness, p.antialias_scale, margin};
  auto it = caches.find(key);
  if (it == caches.end()) {
    auto params = std::make_unique<PathfinderParams>(p);
    auto cache = std::make_unique<ShapeCache>(*params, margin);
    it = caches.emplace(key, std::make_pair(std::move(params), std::move(cache))).first;
  }
  return *it->second.second;
}

// A placed dash: the shape centred on `at`.
struct PlacedDash {
  Coord at;
  const DashShape* shape = nullptr;
};

// What was drawn for one contour (for the test masks) and its marker ends.
struct ContourTrace {
  std::vector<std::pair<Coord, Coord>> dashes;  // (one end, other end) in growth order
  std::vector<PlacedDash> placed;               // the rendered dashes
  std::vector<double> contrast;
  Coord first_tail, last_head;
  void Add(Coord a, Coord b, PlacedDash d, double c) {
    dashes.push_back({a, b});
    placed.push_back(d);
    contrast.push_back(c);
  }
};

struct Snake {
  Coord pivot;
  double orientation = 0;
  PlacedDash last;  // its occupancy is committed when the next dash is accepted
  Coord head;
  ContourTrace trace;
};

// One image under construction: snakes2.py's `image` and `mask` with an undo journal.
class Builder {
 public:
  Builder(const PathfinderParams& p, ShapeCache& cache, std::mt19937_64& rng)
      : p_(p), cache_(cache), rng_(rng), h_(p.window), w_(p.window),
        image_(static_cast<size_t>(h_) * w_, 0.0), mask_(static_cast<size_t>(h_) * w_, 0.0) {
    // initialize_two_seeds(): the padding border is occupied.
    for (int y = 0; y < h_; ++y) {
      for (int x = 0; x < w_; ++x) {
        if (y < p_.padding || y >= h_ - p_.padding || x < p_.padding || x >= w_ - p_.padding) {
          mask_[Idx(y, x)] = 1.0;
        }
      }
    }
  }

  const std::vector<double>& image() const { return image_; }
  std::vector<double>& mutable_image() { return image_; }

  // two_snakes(): both targets, or false with the image and mask back at their initial state
  // (blank, padding border occupied) for the caller's next attempt.
  bool TwoSnakes(Snake* s0, Snake* s1) {
    journal_.clear();
    journaling_ = true;
    const bool ok = TwoSnakesInner(s0, s1);
    if (!ok) Rollback();
    journaling_ = false;
    journal_.clear();
    return ok;
  }

  // make_snake() for a distractor: all or nothing.
  bool MakeSnake(ContourTrace* trace) {
    journal_.clear();
    journaling_ = true;
    Snake s;
    const bool ok = MakeSnakeInner(&s);
    if (!ok) Rollback();
    journaling_ = false;
    journal_.clear();
    if (ok) *trace = std::move(s.trace);
    return ok;
  }

 private:
  bool TwoSnakesInner(Snake* s0, Snake* s1) {
    const int m = cache_.margin();
    const int L = p_.paddle_length;
    double mu[2];
    {
      std::vector<double> list = p_.snake_contrast_list;
      list.insert(list.end(), p_.snake_contrast_list.begin(), p_.snake_contrast_list.end());
      Shuffle(&list);
      mu[0] = list[0];
      mu[1] = list[1];
    }
    // First seed: tail uniform among free pixels of the mask with strips of 2 * seed_distance
    // blocked, dilated by the dash's own shape.
    const double contrast1 = PickContrast(p_.paddle_contrast_list) * mu[0];
    Coord tail1, head1, pivot1;
    double o1 = 0;
    int trial = 0;
    const int strip = 2 * p_.seed_distance;
    std::vector<uint8_t> lined;
    if (!cache_.HasFirstSeedFree()) {
      lined.resize(mask_.size());
      for (int y = 0; y < h_; ++y) {
        for (int x = 0; x < w_; ++x) {
          lined[Idx(y, x)] = mask_[Idx(y, x)] > 0.3 || y < strip || y >= h_ - strip ||
                             x < strip || x >= w_ - strip;
        }
      }
    }
    while (trial <= p_.max_paddle_retrial) {
      const int deg = RandInt(rng_, -180, 180);
      o1 = deg * kPi / 180;
      const double rev = o1 + kPi < kPi ? o1 + kPi : o1 - kPi;
      // The first seed always sees the same fresh mask, so its free pixels depend only on the
      // orientation: cached.
      const std::vector<Coord>& free = cache_.FirstSeedFree(deg, [&] {
        return FreePixels(lined, cache_.SeedKernel(deg));
      });
      if (free.empty()) return false;
      tail1 = free[UniformInt(rng_, free.size())];
      head1 = Translate(tail1, o1, L);
      pivot1 = Translate(head1, rev, L + m);
      if (!Inside(head1) || !Inside(pivot1)) {
        ++trial;
        continue;
      }
      break;
    }
    if (trial > p_.max_paddle_retrial) return false;
    const DashShape& d1 = cache_.Dash(o1);
    DrawLine({tail1, &d1}, contrast1);

    // Second seed: tail at seed_distance from the first, at a uniform integer angle.
    const double contrast = PickContrast(p_.paddle_contrast_list) * mu[1];
    Coord tail2, head2, pivot2;
    double o2 = 0;
    trial = 0;
    while (trial <= p_.max_paddle_retrial) {
      const int deg = RandInt(rng_, -180, 180);
      o2 = deg * kPi / 180;
      const double rev = o2 + kPi < kPi ? o2 + kPi : o2 - kPi;
      const double a = RandInt(rng_, 0, 360) * kPi / 180;
      // np.round_: half to even, as nearbyint in the default rounding mode.
      tail2 = {static_cast<int>(std::nearbyint(tail1.y + p_.seed_distance * std::sin(a))),
               static_cast<int>(std::nearbyint(tail1.x + p_.seed_distance * std::cos(a)))};
      head2 = Translate(tail2, o2, L);
      pivot2 = Translate(head2, rev, L + m);
      if (!Inside(head2) || !Inside(pivot2)) {
        ++trial;
        continue;
      }
      break;
    }
    if (trial > p_.max_paddle_retrial) return false;
    const DashShape& d2 = cache_.Dash(o2);
    DrawLine({tail2, &d2}, contrast);

    *s0 = Snake();
    s0->pivot = pivot1;
    s0->orientation = o1;
    s0->last = {tail1, &d1};
    s0->head = head1;
    s0->trace.first_tail = tail1;
    s0->trace.Add(tail1, {tail1.y + d1.end.y, tail1.x + d1.end.x}, {tail1, &d1}, contrast1);
    *s1 = Snake();
    s1->pivot = pivot2;
    s1->orientation = o2;
    s1->last = {tail2, &d2};
    s1->head = head2;
    s1->trace.first_tail = tail2;
    s1->trace.Add(tail2, {tail2.y + d2.end.y, tail2.x + d2.end.x}, {tail2, &d2}, contrast);

    Snake* snakes[2] = {s0, s1};
    for (int seg = 0; seg < p_.contour_length - 1; ++seg) {
      const double c = PickContrast(p_.paddle_contrast_list);
      for (int i = 0; i < 2; ++i) {
        if (!Extend(snakes[i], c * mu[i])) return false;
      }
    }
    // As the reference: only the second target's last dash is committed to the occupancy mask.
    Commit(s1->last);
    s0->trace.last_head = s0->head;
    s1->trace.last_head = s1->head;
    return true;
  }

  size_t Idx(int y, int x) const { return static_cast<size_t>(y) * w_ + x; }
  bool Inside(Coord c) const { return c.y >= 0 && c.y < h_ && c.x >= 0 && c.x < w_; }

  double PickContrast(const std::vector<double>& list) {
    return list[UniformInt(rng_, list.size())];
  }

  void Shuffle(std::vector<double>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[UniformInt(rng_, i)]);
  }

  void Set(std::vector<double>& a, size_t i, double v) {
    if (journaling_) journal_.push_back({&a == &image_, i, a[i]});
    a[i] = v;
  }

  void Rollback() {
    for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
      (it->image ? image_ : mask_)[it->index] = it->old;
    }
    journal_.clear();
  }

  // image = max(image, float32(line / 255 * contrast)) over the placed patch.
  void DrawLine(const PlacedDash& d, double contrast) {
    const DashShape& s = *d.shape;
    for (int py = 0; py < s.size; ++py) {
      const int y = d.at.y - s.half + py;
      if (y < 0 || y >= h_) continue;
      for (int px = 0; px < s.size; ++px) {
        const int x = d.at.x - s.half + px;
        if (x < 0 || x >= w_) continue;
        const uint8_t u = s.line[static_cast<size_t>(py) * s.size + px];
        if (u == 0) continue;
        const double v = static_cast<float>(u / 255.0 * contrast);
        if (v > image_[Idx(y, x)]) Set(image_, Idx(y, x), v);
      }
    }
  }

  // mask = max(mask, dash mask).
  void Commit(const PlacedDash& d) {
    const DashShape& s = *d.shape;
    for (int py = 0; py < s.size; ++py) {
      const int y = d.at.y - s.half + py;
      if (y < 0 || y >= h_) continue;
      for (int px = 0; px < s.size; ++px) {
        const int x = d.at.x - s.half + px;
        if (x < 0 || x >= w_) continue;
        const double v = s.mask[static_cast<size_t>(py) * s.size + px];
        if (v > mask_[Idx(y, x)]) Set(mask_, Idx(y, x), v);
      }
    }
  }

  // np.max(mask + m_im) < 1.8 (outside the patch mask <= 1 anyway).
  bool Fits(const PlacedDash& d) const {
    const DashShape& s = *d.shape;
    for (int py = 0; py < s.size; ++py) {
      const int y = d.at.y - s.half + py;
      if (y < 0 || y >= h_) continue;
      for (int px = 0; px < s.size; ++px) {
        const int x = d.at.x - s.half + px;
        if (x < 0 || x >= w_) continue;
        if (mask_[Idx(y, x)] + s.mask[static_cast<size_t>(py) * s.size + px] >= 1.8) return false;
      }
    }
    return true;
  }

  // Pixels p (row-major) with no occupied lined[p + o], o in kernel: find_available_coordinates
  // of np.ceil(cv2.dilate(lined_mask, struct) - 0.3).
  std::vector<Coord> FreePixels(const std::vector<uint8_t>& lined,
                                const std::vector<Coord>& kernel) const {
    std::vector<uint8_t> blocked(lined.size(), 0);
    for (const Coord& o : kernel) {
      const int y0 = std::max(0, -o.y), y1 = std::min(h_, h_ - o.y);
      const int x0 = std::max(0, -o.x), x1 = std::min(w_, w_ - o.x);
      for (int y = y0; y < y1; ++y) {
        uint8_t* out = &blocked[Idx(y, 0)];
        const uint8_t* in = &lined[Idx(y + o.y, o.x)];
        for (int x = x0; x < x1; ++x) out[x] |= in[x];
      }
    }
    std::vector<Coord> free;
    for (int y = 0; y < h_; ++y) {
      for (int x = 0; x < w_; ++x) {
        if (!blocked[Idx(y, x)]) free.push_back({y, x});
      }
    }
    return free;
  }

  // seed_snake() with stop_with_availability = 0.01.
  bool SeedSnake(double contrast, Snake* s) {
    const int m = cache_.margin();
    const int L = p_.paddle_length;
    std::vector<uint8_t> lined(mask_.size());
    int64_t raw_free = 0;
    for (int y = 0; y < h_; ++y) {
      for (int x = 0; x < w_; ++x) {
        const bool occ = mask_[Idx(y, x)] > 0.3;
        raw_free += !occ;
        lined[Idx(y, x)] = occ || y == 0 || y == h_ - 1 || x == 0 || x == w_ - 1;
      }
    }
    Coord tail, head, pivot;
    double o = 0;
    int trial = 0;
    while (trial <= p_.max_paddle_retrial) {
      const int deg = RandInt(rng_, -180, 180);
      o = deg * kPi / 180;
      const double rev = o + kPi < kPi ? o + kPi : o - kPi;
      const std::vector<Coord>& kernel = cache_.SeedKernel(deg);
      if (static_cast<double>(raw_free) / (static_cast<double>(h_) * w_) < 0.01) return false;
      const std::vector<Coord> free = FreePixels(lined, kernel);
      if (free.empty()) return false;
      tail = free[UniformInt(rng_, free.size())];
      head = Translate(tail, o, L);
      pivot = Translate(head, rev, L + m);
      if (!Inside(head) || !Inside(pivot)) {
        ++trial;
        continue;
      }
      break;
    }
    if (trial > p_.max_paddle_retrial) return false;
    const DashShape& d = cache_.Dash(o);
    DrawLine({tail, &d}, contrast);
    s->pivot = pivot;
    s->orientation = o;
    s->last = {tail, &d};
    s->head = head;
    s->trace.first_tail = tail;
    s->trace.Add(tail, {tail.y + d.end.y, tail.x + d.end.x}, {tail, &d}, contrast);
    return true;
  }

  bool MakeSnakeInner(Snake* s) {
    if (!SeedSnake(PickContrast(p_.snake_contrast_list), s)) return false;
    for (int seg = 0; seg < p_.distractor_length - 1; ++seg) {
      if (!Extend(s, PickContrast(p_.snake_contrast_list))) return false;
    }
    Commit(s->last);
    s->trace.last_head = s->head;
    return true;
  }

  // extend_snake() + get_coords_cmf().
  bool Extend(Snake* s, double contrast) {
    const int m = cache_.margin();
    const int L = p_.paddle_length;
    const Coord pivot = Translate(s->pivot, s->orientation, L + 2 * m);
    const ShapeCache::Circle& circle = cache_.circle();
    std::vector<Coord>& cand = cand_;
    cand.clear();
    for (size_t i = 0; i < circle.dy.size(); ++i) {
      const double y = pivot.y + circle.dy[i], x = pivot.x + circle.dx[i];
      if (y >= h_ || y < 0 || x >= w_ || x < 0) continue;
      cand.push_back({static_cast<int>(y), static_cast<int>(x)});
    }
    if (cand.empty()) return false;
    std::sort(cand.begin(), cand.end(),
              [](Coord a, Coord b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
    cand.erase(std::unique(cand.begin(), cand.end(),
                           [](Coord a, Coord b) { return a.y == b.y && a.x == b.x; }),
               cand.end());
    std::vector<double>& orient = orient_;
    std::vector<double>& cmf = cmf_;
    orient.resize(cand.size());
    cmf.resize(cand.size());
    double total = 0;
    for (size_t i = 0; i < cand.size(); ++i) {
      orient[i] = circle.Atan2(cand[i].y - pivot.y, cand[i].x - pivot.x);
      double delta = std::fabs(orient[i] - s->orientation);
      delta = std::min(delta, 2 * kPi - delta);
      delta = std::min(delta * p_.continuity, 0.5 * kPi);
      const double c = std::max(std::cos(delta), 0.0);
      // The occupancy dilated by a disk of radius margin, read at the candidate.
      double dil = 0;
      for (const Coord& o : cache_.small_disk()) {
        const int yy = cand[i].y + o.y, xx = cand[i].x + o.x;
        if (yy >= 0 && yy < h_ && xx >= 0 && xx < w_) dil = std::max(dil, mask_[Idx(yy, xx)]);
      }
      cmf[i] = (1 - dil) * (c * c);
      total += cmf[i];
    }
    if (total < 1e-4) return false;
    double acc = 0;
    for (double& v : cmf) {
      acc += v / total;
      v = acc;
    }
    for (int trial = 0; trial <= p_.max_paddle_retrial; ++trial) {
      const double u = Uniform01(rng_);
      size_t idx = 0;
      for (size_t i = 0; i < cmf.size(); ++i) {
        if (cmf[i] - u > 0) {
          idx = i;
          break;
        }
      }
      const double flipped = FlipByPi(orient[idx]);
      const DashShape& d = cache_.Dash(flipped);
      const PlacedDash placed{cand[idx], &d};
      if (!Fits(placed)) continue;
      DrawLine(placed, contrast);
      Commit(s->last);
      s->last = placed;
      s->pivot = pivot;
      s->orientation = orient[idx];
      s->head = cand[idx];
      s->trace.Add({cand[idx].y + d.end.y, cand[idx].x + d.end.x}, cand[idx], placed, contrast);
      return true;
    }
    return false;
  }

  struct JournalEntry {
    bool image;
    size_t index;
    double old;
  };

  const PathfinderParams& p_;
  ShapeCache& cache_;
  std::mt19937_64& rng_;
  const int h_, w_;
  std::vector<double> image_;
  std::vector<double> mask_;
  std::vector<JournalEntry> journal_;
  bool journaling_ = false;
  std::vector<Coord> cand_;  // scratch for Extend()
  std::vector<double> orient_, cmf_;
};

// draw_circle(): a disk of radius r * aa on the aa-times finer grid around coord * aa,
// Lanczos-downsampled (values 0..255).
std::vector<uint8_t> DrawCircle(int window, Coord c, double radius, int aa, const Coeffs& co) {
  const int big = window * aa;
  std::vector<uint8_t> hi(static_cast<size_t>(big) * big, 0);
  const double r2 = (radius * aa) * (radius * aa);
  const int reach = static_cast<int>(std::ceil(radius * aa)) + 1;
  for (int i = std::max(0, c.y * aa - reach); i < std::min(big, c.y * aa + reach + 1); ++i) {
    for (int j = std::max(0, c.x * aa - reach); j < std::min(big, c.x * aa + reach + 1); ++j) {
      const double y = i - c.y * aa, x = j - c.x * aa;
      if (x * x + y * y <= r2) hi[static_cast<size_t>(i) * big + j] = 255;
    }
  }
  return ResizeLanczos(hi, big, window, co);
}

absl::StatusOr<PathfinderImage> Draw(const PathfinderParams& p, bool positive,
                                     std::mt19937_64& rng, bool with_masks) {
  PathfinderImage out;
  out.label = positive ? 1 : 0;
  const int margin = p.paddle_margin_list[UniformInt(rng, p.paddle_margin_list.size())];
  out.margin = margin;
  ShapeCache& cache = CacheFor(p, margin);
  Builder b(p, cache, rng);
  Snake targets[2];
  constexpr int kMaxTwoSnakeAttempts = 1000000;
  int attempts = 0;
  while (!b.TwoSnakes(&targets[0], &targets[1])) {
    if (++attempts >= kMaxTwoSnakeAttempts) {
      return absl::InternalError(absl::StrCat("pathfinder: could not place the two target "
                                              "contours in ", attempts, " attempts"));
    }
  }
  std::vector<ContourTrace> distractors;
  for (int i = 0; i < p.num_distractor_snakes; ++i) {
    for (int attempt = 0; attempt <= p.max_distractor_contour_retrial; ++attempt) {
      ContourTrace t;
      if (b.MakeSnake(&t)) {
        distractors.push_back(std::move(t));
        break;
      }
    }
  }
  out.num_distractors_drawn = static_cast<int>(distractors.size());

  // Markers.
  const int origin = static_cast<int>(UniformInt(rng, 2));
  const int terminal = positive ? origin : 1 - origin;
  const Coord origin_at = targets[origin].trace.first_tail;
  const Coord terminal_at = targets[terminal].trace.last_head;
  const int n = p.window;
  thread_local std::map<std::pair<int, int>, Coeffs> marker_coeffs;
  auto cit = marker_coeffs.find({n, p.antialias_scale});
  if (cit == marker_coeffs.end()) {
    cit = marker_coeffs
              .emplace(std::make_pair(n, p.antialias_scale),
                       PrecomputeCoeffs(n * p.antialias_scale, n))
              .first;
  }
  const std::vector<uint8_t> c0 =
      DrawCircle(n, origin_at, p.marker_radius, p.antialias_scale, cit->second);
  const std::vector<uint8_t> c1 =
      DrawCircle(n, terminal_at, p.marker_radius, p.antialias_scale, cit->second);
  std::vector<double>& img = b.mutable_image();
  for (size_t i = 0; i < img.size(); ++i) {
    const double mk = std::max(c0[i], c1[i]) / 255.0;
    img[i] = std::max(img[i], mk);
  }

  // scipy.misc.imsave -> bytescale: per-image min/max to 0..255, rounded.
  double lo = img[0], hi = img[0];
  for (double v : img) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  double cscale = hi - lo;
  if (cscale == 0) cscale = 1;
  const double scale = 255.0 / cscale;
  out.image.height = n;
  out.image.width = n;
  out.image.pixels.resize(img.size());
  for (size_t i = 0; i < img.size(); ++i) {
    const double v = std::clamp((img[i] - lo) * scale + 0, 0.0, 255.0);
    out.image.pixels[i] = static_cast<uint8_t>(v + 0.5);
  }

  out.origin_marker = {origin_at.y, origin_at.x};
  out.terminal_marker = {terminal_at.y, terminal_at.x};
  out.origin_contour = origin;
  out.terminal_contour = terminal;
  if (with_masks) {
    std::vector<const ContourTrace*> all = {&targets[0].trace, &targets[1].trace};
    for (const ContourTrace& t : distractors) all.push_back(&t);
    std::vector<double> best(img.size(), 0.0);
    out.owner.assign(img.size(), 0);
    for (size_t id = 0; id < all.size(); ++id) {
      const ContourTrace& t = *all[id];
      std::vector<std::array<int, 2>> poly;
      for (const auto& [a, b] : t.dashes) {
        poly.push_back({a.y, a.x});
        poly.push_back({b.y, b.x});
      }
      out.contours.push_back(std::move(poly));
      for (size_t k = 0; k < t.placed.size(); ++k) {
        const DashShape& d = *t.placed[k].shape;
        for (int py = 0; py < d.size; ++py) {
          const int y = t.placed[k].at.y - d.half + py;
          if (y < 0 || y >= n) continue;
          for (int px = 0; px < d.size; ++px) {
            const int x = t.placed[k].at.x - d.half + px;
            if (x < 0 || x >= n) continue;
            const uint8_t u = d.line[static_cast<size_t>(py) * d.size + px];
            const double v = static_cast<float>(u / 255.0 * t.contrast[k]);
            const size_t i = static_cast<size_t>(y) * n + x;
            if (u > 0 && v > best[i]) {
              best[i] = v;
              out.owner[i] = static_cast<int16_t>(id + 1);
            }
          }
        }
      }
    }
    out.marker.assign(img.size(), 0);
    for (size_t i = 0; i < img.size(); ++i) out.marker[i] = c0[i] > 0 || c1[i] > 0;
  }
  return out;
}

std::string MetadataLine(const PathfinderParams& p, int64_t dir, int64_t i, int label,
                         int margin) {
  return absl::StrCat("imgs/", dir, " sample_", i, ".png ", i, " ", label, " ", p.continuity_text,
                      " ", p.contour_length, " ", p.distractor_length, " ", p.paddle_length, " ",
                      p.paddle_thickness_text, " ", margin, " ", p.paddle_contrast_list.size());
}

}  // namespace

std::string PathfinderDifficultyName(int contour_length) {
  return contour_length == 6 ? "curv_baseline"
                             : absl::StrCat("curv_contour_length_", contour_length);
}

absl::StatusOr<PathfinderParams> PathfinderParamsFor(const PathfinderOptions& o) {
  if (o.contour_length < 3 || o.contour_length > 30) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pathfinder contour_length=", o.contour_length,
        " must be in [3, 30] (6 = curv_baseline, 9, 14 = the LRA difficulties)"));
  }
  PathfinderParams p;
  int k = 0;  // num_distractor_snakes = k // distractor_length
  switch (o.resolution) {
    case 32:
      p.padding = 1;
      p.paddle_margin_list = {1};
      p.seed_distance = 7;
      p.marker_radius = 1.5;
      p.paddle_length = 2;
      p.paddle_thickness = 0.5;
      p.paddle_thickness_text = "0.5";
      p.continuity = 1.0;
      p.continuity_text = "1.0";
      k = 20;
      p.snake_contrast_list = {2.0};
      p.paddle_contrast_list = {0.75};
      break;
    case 64:
      p.padding = 1;
      p.paddle_margin_list = {1};
      p.seed_distance = 12;
      p.marker_radius = 2.5;
      p.paddle_length = 5;
      p.paddle_thickness = 1;
      p.paddle_thickness_text = "1";
      p.continuity = 1.8;
      p.continuity_text = "1.8";
      k = 22;
      p.snake_contrast_list = {0.8};
      p.paddle_contrast_list = {1.0};
      break;
    case 128:
      p.padding = 1;
      p.paddle_margin_list = {2, 3};
      p.seed_distance = 20;
      p.marker_radius = 3;
      p.paddle_length = 5;
      p.paddle_thickness = 1.5;
      p.paddle_thickness_text = "1.5";
      p.continuity = 1.8;
      p.continuity_text = "1.8";
      k = 35;
      p.snake_contrast_list = {0.9};
      p.paddle_contrast_list = {1.0};
      break;
    case 256:
      p.padding = 22;
      p.paddle_margin_list = {3};
      p.seed_distance = 27;
      p.marker_radius = 5;
      p.paddle_length = 5;
      p.paddle_thickness = 2;
      p.paddle_thickness_text = "2";
      p.continuity = 1.8;
      p.continuity_text = "1.8";
      k = 30;
      p.snake_contrast_list = {1.0};
      p.paddle_contrast_list = {1.0};
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "pathfinder resolution=", o.resolution, " must be 32, 64, 128 or 256"));
  }
  p.window = o.resolution;
  p.antialias_scale = 2;
  p.contour_length = o.contour_length;
  p.distractor_length = o.contour_length / 3;
  p.num_distractor_snakes =
      o.num_distractor_snakes >= 0 ? o.num_distractor_snakes : k / p.distractor_length;
  if (o.num_distractor_snakes > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pathfinder num_distractor_snakes=", o.num_distractor_snakes, " must be <= 1000"));
  }
  return p;
}

absl::StatusOr<PathfinderImage> DrawPathfinderImage(const PathfinderOptions& options,
                                                    bool positive, std::mt19937_64& rng) {
  absl::StatusOr<PathfinderParams> p = PathfinderParamsFor(options);
  if (!p.ok()) return p.status();
  return Draw(*p, positive, rng, /*with_masks=*/true);
}

absl::Status GeneratePathfinder(const PathfinderOptions& options, const std::string& out_dir,
                                const std::function<void(int64_t, int64_t)>& progress) {
  absl::StatusOr<PathfinderParams> params = PathfinderParamsFor(options);
  if (!params.ok()) return params.status();
  const PathfinderParams& p = *params;
  const int64_t total = options.num_images;
  const int64_t per_dir = options.images_per_dir;
  if (total < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pathfinder num_images=", total, " must be >= 1"));
  }
  if (per_dir < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pathfinder images_per_dir=", per_dir, " must be >= 1"));
  }
  const std::string root = absl::StrCat(out_dir, "/", PathfinderDifficultyName(p.contour_length));
  const int64_t num_dirs = (total + per_dir - 1) / per_dir;
  if (auto st = MakeDirs(root + "/metadata"); !st.ok()) return st;
  for (int64_t k = 0; k < num_dirs; ++k) {
    if (auto st = MakeDirs(absl::StrCat(root, "/imgs/", k)); !st.ok()) return st;
  }

  int threads = options.num_threads > 0 ? options.num_threads
                                        : static_cast<int>(std::thread::hardware_concurrency());
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, total));
  std::vector<std::string> rows(total);
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable cv;
  absl::Status first_error;
  auto worker = [&]() {
    for (;;) {
      const int64_t j = next.fetch_add(1);
      if (j >= total || failed.load()) break;
      std::mt19937_64 rng(SplitMix64(SplitMix64(options.seed) ^ static_cast<uint64_t>(j)));
      const bool positive = UniformInt(rng, 2) == 1;
      absl::StatusOr<PathfinderImage> img = Draw(p, positive, rng, /*with_masks=*/false);
      absl::Status st = img.status();
      const int64_t k = j / per_dir, i = j % per_dir;
      if (st.ok()) {
        st = WriteGrayPng(absl::StrCat(root, "/imgs/", k, "/sample_", i, ".png"), img->image);
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
        failed.store(true);
        cv.notify_all();
        break;
      }
      rows[j] = MetadataLine(p, k, i, img->label, img->margin);
      if (done.fetch_add(1) + 1 == total) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  {
    std::unique_lock<std::mutex> lock(mu);
    while (done.load() < total && !failed.load()) {
      cv.wait_for(lock, std::chrono::milliseconds(500),
                  [&] { return done.load() >= total || failed.load(); });
      if (progress && !failed.load() && done.load() < total) {
        lock.unlock();
        progress(done.load(), total);
        lock.lock();
      }
    }
  }
  for (std::thread& t : pool) t.join();
  if (!first_error.ok()) return first_error;

  for (int64_t k = 0; k < num_dirs; ++k) {
    std::string text;
    for (int64_t j = k * per_dir; j < std::min(total, (k + 1) * per_dir); ++j) {
      absl::StrAppend(&text, rows[j], "\n");
    }
    if (auto st = WriteFileAtomically(absl::StrCat(root, "/metadata/", k, ".npy"), text);
        !st.ok()) {
      return st;
    }
  }
  // Metadata of an earlier, larger run would be read with this one.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root + "/metadata", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 5 || name.substr(name.size() - 4) != ".npy") continue;
    int64_t k;
    if (absl::SimpleAtoi(name.substr(0, name.size() - 4), &k) && k >= num_dirs) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  if (progress) progress(total, total);
  return absl::OkStatus();
}

}  // namespace loom::data::lra
