#include "parallel/watchdog.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::parallel {
namespace {

using namespace std::chrono_literals;

struct Recorder {
  std::mutex mu;
  std::vector<StalledCollective> calls;
  CollectiveWatchdog::Handler handler() {
    return [this](const StalledCollective& s) {
      std::lock_guard<std::mutex> lock(mu);
      calls.push_back(s);
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return calls.size();
  }
};

TEST(WatchdogTest, FiresOnceForAStalledCollective) {
  Recorder rec;
  CollectiveWatchdog w(0.2, rec.handler(), 0.01);
  w.Begin("all-reduce", 4096);
  std::this_thread::sleep_for(600ms);
  w.End();
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.calls[0].what, "all-reduce");
  EXPECT_EQ(rec.calls[0].bytes, 4096);
  EXPECT_EQ(rec.calls[0].sequence, 1u);
  EXPECT_GE(rec.calls[0].waited_s, 0.2);
  EXPECT_LT(rec.calls[0].waited_s, 0.5);
  EXPECT_EQ(DescribeCollective(rec.calls[0]), "all-reduce #1 (4.0 KiB)");
}

TEST(WatchdogTest, QuickCollectivesNeverFire) {
  Recorder rec;
  CollectiveWatchdog w(0.2, rec.handler(), 0.01);
  const auto end = std::chrono::steady_clock::now() + 700ms;
  int n = 0;
  while (std::chrono::steady_clock::now() < end) {  // many short ones, longer than the timeout
    w.Begin("barrier", 0);
    std::this_thread::sleep_for(1ms);
    w.End();
    ++n;
  }
  EXPECT_GT(n, 100);
  EXPECT_EQ(rec.count(), 0u);
}

TEST(WatchdogTest, EachStalledCollectiveFiresItsOwnHandler) {
  Recorder rec;
  CollectiveWatchdog w(0.1, rec.handler(), 0.01);
  w.Begin("broadcast", 8);
  std::this_thread::sleep_for(300ms);
  w.End();
  w.Begin("barrier", 0);
  w.End();
  w.Begin("all-gather", 2 << 20);
  std::this_thread::sleep_for(300ms);
  w.End();
  ASSERT_EQ(rec.count(), 2u);
  EXPECT_EQ(DescribeCollective(rec.calls[0]), "broadcast #1 (8 B)");
  EXPECT_EQ(DescribeCollective(rec.calls[1]), "all-gather #3 (2.0 MiB)");
}

TEST(WatchdogTest, BeginAndEndFromAnotherThread) {
  Recorder rec;
  CollectiveWatchdog w(0.1, rec.handler(), 0.01);
  std::thread t([&] {
    w.Begin("MPI_Finalize", 0);
    std::this_thread::sleep_for(300ms);
    w.End();
  });
  t.join();
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(DescribeCollective(rec.calls[0]), "MPI_Finalize #1");
}

TEST(WatchdogTest, DisabledWithoutATimeout) {
  Recorder rec;
  CollectiveWatchdog w(0, rec.handler());
  EXPECT_FALSE(w.enabled());
  w.Begin("all-reduce", 1);
  std::this_thread::sleep_for(100ms);
  w.End();
  EXPECT_EQ(rec.count(), 0u);
}

}  // namespace
}  // namespace loom::parallel
