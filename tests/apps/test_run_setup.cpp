// The GPU flags shared by train, evaluate and verify reach the backend's options:
// parsed with the real add_common_flags, mapped by the real backend_options. Both values
// of every boolean flag are checked. No device is opened.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "apps/cnn/run_setup.h"

namespace cnn {
namespace {

app::CommonFlags parse(std::vector<std::string> args) {
  CLI::App cmd("test");
  app::CommonFlags f;
  app::add_common_flags(cmd, f);
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

}  // namespace
}  // namespace cnn
