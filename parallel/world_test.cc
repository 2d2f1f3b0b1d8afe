#include "parallel/world.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::parallel {
namespace {

auto Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(WorldTest, NoLauncherIsASingleProcess) {
  auto w = DiscoverWorld(Env({}));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->rank, 0);
  EXPECT_EQ(w->world_size, 1);
  EXPECT_EQ(w->source, "none");
}

TEST(WorldTest, OpenMpiWinsOverSlurm) {
  auto w = DiscoverWorld(Env({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"SLURM_PROCID", "0"},
                              {"SLURM_NTASKS", "1"}}));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->rank, 3);
  EXPECT_EQ(w->world_size, 4);
  EXPECT_EQ(w->local_rank, 1);
  EXPECT_EQ(w->source, "openmpi");
}

TEST(WorldTest, SlurmVariables) {
  auto w = DiscoverWorld(Env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}}));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->rank, 5);
  EXPECT_EQ(w->local_rank, 1);
  EXPECT_EQ(w->source, "slurm");
}

TEST(WorldTest, BadValuesNameTheVariable) {
  auto w = DiscoverWorld(Env({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}}));
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), ::testing::HasSubstr("OMPI_COMM_WORLD_RANK"));
  auto v = DiscoverWorld(Env({{"RANK", "2"}, {"WORLD_SIZE", "2"}}));
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), ::testing::HasSubstr("WORLD_SIZE=2"));
}

}  // namespace
}  // namespace loom::parallel
