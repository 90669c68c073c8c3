// The flags shared by the commands: the GPU ones reach the backend's options (parsed with
// the real add_common_flags, mapped by the real backend_options; both values of every
// boolean flag are checked), and a command can leave out those it would ignore. No device
// is opened.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "apps/cnn/run_setup.h"

namespace cnn {
namespace {

app::CommonFlags parse(std::vector<std::string> args, unsigned without = 0) {
  CLI::App cmd("test");
  app::CommonFlags f;
  app::add_common_flags(cmd, f, without);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  cmd.parse(args);
  return f;
}

TEST(RunSetup, Tf32IsOffUnlessAskedFor) {
  EXPECT_FALSE(app::backend_options(parse({})).tf32);
  EXPECT_TRUE(app::backend_options(parse({"--tf32"})).tf32);
  EXPECT_FALSE(BackendOptions{}.tf32);  // strict FP32 is the default of the options too
}

TEST(RunSetup, DeterministicIsOffUnlessAskedFor) {
  EXPECT_FALSE(app::backend_options(parse({})).deterministic);
  EXPECT_TRUE(app::backend_options(parse({"--deterministic"})).deterministic);
  EXPECT_FALSE(BackendOptions{}.deterministic);
}

TEST(RunSetup, GpuFlagsReachTheBackendOptions) {
  const BackendOptions plain = app::backend_options(parse({}));
  EXPECT_EQ(plain.policy, ImplPolicy::Native);
  EXPECT_FALSE(plain.sync_debug);
  EXPECT_EQ(plain.workspace_limit, size_t(256) << 20);

  const BackendOptions o = app::backend_options(
      parse({"--impl", "cudnn", "--sync-debug", "--workspace-mb", "64", "--tf32"}));
  EXPECT_EQ(o.policy, ImplPolicy::Cudnn);
  EXPECT_TRUE(o.sync_debug);
  EXPECT_EQ(o.workspace_limit, size_t(64) << 20);
  EXPECT_TRUE(o.tf32);
}

TEST(RunSetup, ImplAutoAndTheConvTilesReachTheBackendOptions) {
  EXPECT_EQ(app::backend_options(parse({"--impl", "auto"})).policy, ImplPolicy::Auto);
  EXPECT_FALSE(app::backend_options(parse({})).large_tiles);
  EXPECT_FALSE(app::backend_options(parse({"--conv-tiles", "64"})).large_tiles);
  EXPECT_TRUE(app::backend_options(parse({"--conv-tiles", "128"})).large_tiles);
  EXPECT_THROW(parse({"--conv-tiles", "96"}), CLI::ValidationError);
  EXPECT_THROW(parse({"--impl", "fastest"}), CLI::ValidationError);
}

// A command leaves out the flags it would ignore: they are refused, the others still parse.
TEST(RunSetup, ACommandCanLeaveOutTheFlagsItWouldIgnore) {
  EXPECT_EQ(parse({"--seed", "7", "--limit", "9"}).limit, 9);
  EXPECT_THROW(parse({"--limit", "9"}, app::kFlagLimit), CLI::ExtrasError);
  EXPECT_THROW(parse({"--seed", "7"}, app::kFlagSeed), CLI::ExtrasError);
  EXPECT_THROW(parse({"--impl", "cudnn"}, app::kFlagImpl), CLI::ExtrasError);
  const app::CommonFlags f =
      parse({"--seed", "7", "--batch-size", "5"}, app::kFlagLimit | app::kFlagImpl);
  EXPECT_EQ(f.seed, 7u);
  EXPECT_EQ(f.batch_size, 5);
}

}  // namespace
}  // namespace cnn
