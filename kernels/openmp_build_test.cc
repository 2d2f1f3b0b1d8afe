// at::parallel_for is an inline template (ATen/ParallelOpenMP.h): it only forks threads in a
// translation unit compiled with -fopenmp. Until session 6 Loom's were not (.bazelrc had no
// -fopenmp), so every Loom kernel built on it (GELU, fused AdamW, the LM-head loss row loop, the
// SSM sums) silently ran on one core while ATen's own ops used all of them. This test, compiled
// with the repository's flags like every kernel, fails if that regresses.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

namespace {

TEST(OpenMpBuildTest, ParallelForInLoomCodeUsesSeveralThreads) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::set<int> aten_ids;
  at::parallel_for(0, 64, 1, [&](int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mu);
    threads.insert(std::this_thread::get_id());
    aten_ids.insert(at::get_thread_num());
    (void)begin;
    (void)end;
  });
  at::set_num_threads(saved);
  EXPECT_EQ(threads.size(), 2u) << "at::parallel_for ran on " << threads.size()
                                << " thread(s): is Loom built without -fopenmp?";
  EXPECT_EQ(aten_ids, (std::set<int>{0, 1}));
}

TEST(OpenMpBuildTest, NestedCallsStaySerial) {
  // Inside a parallel region ATen runs nested parallel_for inline; Loom's kernels rely on it
  // (e.g. a GELU called from inside another parallel loop must not oversubscribe).
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  std::mutex mu;
  int nested_calls = 0;
  bool all_inline = true;
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    const std::thread::id outer = std::this_thread::get_id();
    at::parallel_for(0, 16, 1, [&](int64_t, int64_t) {
      std::lock_guard<std::mutex> lock(mu);
      ++nested_calls;
      if (std::this_thread::get_id() != outer) all_inline = false;
    });
  });
  at::set_num_threads(saved);
  EXPECT_EQ(nested_calls, 2);
  EXPECT_TRUE(all_inline);
}

}  // namespace
