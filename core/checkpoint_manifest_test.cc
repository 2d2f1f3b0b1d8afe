#include "core/checkpoint_manifest.h"

#include <string>

#include "gtest/gtest.h"

namespace loom {
namespace {

CheckpointManifest Valid() {
  CheckpointManifest m;
  m.set_step(12);
  m.set_world_size(2);
  m.set_zero_stage(1);
  FileChecksum* f = m.add_files();
  f->set_name("model.safetensors");
  f->set_bytes(100);
  TensorChecksum* t = m.add_tensors();
  t->set_file("model.safetensors");
  t->set_name("w");
  return m;
}

absl::Status Parse(const CheckpointManifest& m) {
  return ParseCheckpointManifest(m.SerializeAsString(), "manifest.pb").status();
}

TEST(CheckpointManifestTest, AcceptsAValidManifest) { EXPECT_TRUE(Parse(Valid()).ok()); }

TEST(CheckpointManifestTest, RefusesNamesOutsideTheDirectoryAndInconsistencies) {
  for (const char* name : {"../../etc/passwd", "sub/model.safetensors", "..", ""}) {
    CheckpointManifest m = Valid();
    m.mutable_files(0)->set_name(name);
    absl::Status s = Parse(m);
    EXPECT_FALSE(s.ok()) << name;
    EXPECT_NE(s.message().find("manifest.pb"), std::string::npos) << s;
  }
  CheckpointManifest dup = Valid();
  *dup.add_files() = dup.files(0);
  EXPECT_NE(Parse(dup).message().find("listed twice"), std::string::npos);
  CheckpointManifest orphan = Valid();
  orphan.mutable_tensors(0)->set_file("other.safetensors");
  EXPECT_NE(Parse(orphan).message().find("unlisted file"), std::string::npos);
  CheckpointManifest world = Valid();
  world.set_world_size(0);
  EXPECT_NE(Parse(world).message().find("world size"), std::string::npos);
  CheckpointManifest zero = Valid();
  zero.set_zero_stage(3);
  EXPECT_FALSE(Parse(zero).ok());
  EXPECT_FALSE(ParseCheckpointManifest("\xff\xff garbage", "m").ok());
}

}  // namespace
}  // namespace loom
