// The handwritten convolution kernels (kernels/src/conv2d*.cu) against the CPU reference:
// a sweep of named edge shapes and the seed models' layers, every variant (direct, FP32
// implicit GEMM, TF32 implicit GEMM) of each pass compared with a bound derived from its
// reduction length, and bit for bit on small integers; the activation fused into the
// forward epilogue against the separate pass. Without a GPU the device tests skip; the
// support, variant and workspace queries run anyway.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cnnk/activation.h"
#include "cnnk/bias.h"
#include "cnnk/conv2d.h"
#include "engine/ops/conv2d/conv2d.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::ActKind;
using cnnk::Conv2dGeometry;
using cnnk::ConvOptions;
using cnnk::ConvPass;
using cnnk::ConvVariant;
using test::cast_all;
using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// One convolution layer applied to an input of n x c x h x w.
struct ConvCase {
  const char* name;
  int n, c, h, w;
  int k, kh, kw;
  int sh, sw;
  Padding pad;
  bool bias;
};

Conv2dGeometry geometry_of(const ConvCase& cc) {
  Conv2dParams p;
  p.filters = cc.k;
  p.kernel_h = cc.kh;
  p.kernel_w = cc.kw;
  p.stride_h = cc.sh;
  p.stride_w = cc.sw;
  p.padding = cc.pad;
  p.use_bias = cc.bias;
  return conv2d_geometry(p, Shape{cc.n, cc.c, cc.h, cc.w});
}

std::string describe(const Conv2dGeometry& g) {
  char buf[200];
  std::snprintf(
      buf, sizeof buf, "n%d c%d %dx%d -> k%d %dx%d, filter %dx%d, stride %dx%d, pad top %d left %d",
      g.n, g.c, g.h, g.w, g.k, g.p, g.q, g.r, g.s, g.stride_h, g.stride_w, g.pad_top, g.pad_left);
  return buf;
}

const Padding kValid = Padding::valid();
const Padding kSame = Padding::same();
Padding pad(int top, int bottom, int left, int right) {
  return Padding::explicit_(top, bottom, left, right);
}

// Shapes that break kernels: every tile edge, stride and padding kind, channel counts off
// the tile (1, 3, 17, 130), batch 1 and odd batches; then the seed models' layers.
const ConvCase kCases[] = {
    // name                        n   c   h   w    k  kh kw sh sw pad          bias
    {"pointwise_c1_k1", 1, 1, 5, 5, 1, 1, 1, 1, 1, kValid, true},
    {"pointwise_c3_k17_s2", 3, 3, 7, 7, 17, 1, 1, 2, 2, kValid, false},
    {"pointwise_s3_mostly_unread", 1, 3, 13, 13, 3, 1, 1, 3, 3, kValid, true},
    {"k3_same_c1_k1", 1, 1, 5, 5, 1, 3, 3, 1, 1, kSame, true},
    {"k3_valid_c3_k17", 3, 3, 13, 13, 17, 3, 3, 1, 1, kValid, true},
    {"k3_same_s2_odd13", 3, 17, 13, 13, 3, 3, 3, 2, 2, kSame, false},
    {"k3_same_s2_even28_asym", 1, 3, 28, 28, 17, 3, 3, 2, 2, kSame, true},
    {"k5_same_7", 3, 17, 7, 7, 3, 5, 5, 1, 1, kSame, true},
    {"k5_valid_s2_13", 1, 3, 13, 13, 64, 5, 5, 2, 2, kValid, false},
    {"k7_same_larger_than_input", 1, 1, 5, 5, 64, 7, 7, 1, 1, kSame, true},
    {"k7_same_s2_13", 3, 3, 13, 13, 17, 7, 7, 2, 2, kSame, true},
    {"k7_valid_single_output", 1, 17, 7, 7, 3, 7, 7, 1, 1, kValid, false},
    {"k7_valid_s2_28", 1, 3, 28, 28, 1, 7, 7, 2, 2, kValid, true},
    {"k7_same_on_3x3", 3, 1, 3, 3, 3, 7, 7, 1, 1, kSame, true},
    {"k4_same_asym_1_2", 1, 3, 8, 8, 17, 4, 4, 1, 1, kSame, true},
    {"k2_same_asym_0_1", 3, 1, 7, 7, 3, 2, 2, 1, 1, kSame, false},
    {"k5_equals_input", 1, 3, 5, 5, 3, 5, 5, 1, 1, kValid, true},
    {"k2_stride3_gaps", 3, 3, 13, 13, 17, 2, 2, 3, 3, kValid, true},
    {"explicit_pad_2_0_1_3", 1, 3, 7, 7, 17, 3, 3, 1, 1, pad(2, 0, 1, 3), true},
    {"explicit_pad_s2_0_2_3_1", 3, 17, 13, 13, 3, 3, 3, 2, 2, pad(0, 2, 3, 1), false},
    {"explicit_pad_wider_than_kernel", 1, 3, 5, 5, 3, 3, 3, 1, 1, pad(3, 3, 3, 3), true},
    {"rect_kernel_3x5_rect_input", 1, 3, 13, 7, 17, 3, 5, 1, 1, kSame, true},
    {"rect_kernel_1x7", 3, 3, 7, 13, 3, 1, 7, 1, 1, kSame, false},
    {"stride_2x1", 3, 3, 13, 13, 3, 3, 3, 2, 1, kSame, true},
    {"stride_1x3", 1, 3, 13, 13, 17, 3, 3, 1, 3, kSame, true},
    {"c130_k1", 1, 130, 5, 5, 1, 3, 3, 1, 1, kSame, true},
    {"c1_k130", 1, 1, 13, 13, 130, 3, 3, 1, 1, kValid, true},
    {"c130_k130_pointwise", 1, 130, 7, 7, 130, 1, 1, 1, 1, kValid, true},
    {"c64_k64_k3", 3, 64, 5, 5, 64, 3, 3, 1, 1, kSame, false},
    {"c17_k130_s2", 1, 17, 13, 13, 130, 3, 3, 2, 2, kSame, true},
    {"c130_k17_k5", 1, 130, 7, 7, 17, 5, 5, 1, 1, kSame, true},
    {"c16_pointwise_crs16", 1, 16, 5, 5, 3, 1, 1, 1, 1, kValid, true},
    {"c17_pointwise_crs17", 1, 17, 5, 5, 3, 1, 1, 1, 1, kValid, true},
    {"rows_exactly_64", 1, 3, 10, 10, 64, 3, 3, 1, 1, kValid, true},
    {"rows_65_k65", 1, 3, 5, 13, 65, 3, 3, 1, 1, kSame, true},
    {"k63", 3, 3, 5, 5, 63, 3, 3, 1, 1, kSame, false},
    {"batch5_many_row_tiles", 5, 3, 13, 13, 17, 3, 3, 1, 1, kSame, true},
    {"split_many_chunks", 16, 1, 28, 28, 3, 3, 3, 1, 1, kSame, true},
    {"split_uneven_last_chunk", 9, 2, 28, 28, 3, 3, 3, 1, 1, kValid, false},
    {"split_many_tiles", 3, 130, 28, 28, 17, 1, 1, 1, 1, kSame, true},
    {"split_capped_at_32", 64, 1, 48, 48, 2, 3, 3, 1, 1, kSame, true},
    // The seed models' layers (Fashion-MNIST CNN; small MNIST CNN).
    {"fmnist_conv1_1to64_k7_28", 2, 1, 28, 28, 64, 7, 7, 1, 1, kSame, true},
    {"fmnist_conv2_64to128_14", 1, 64, 14, 14, 128, 3, 3, 1, 1, kSame, true},
    {"fmnist_conv3_128to128_14", 1, 128, 14, 14, 128, 3, 3, 1, 1, kSame, true},
    {"fmnist_conv4_128to256_7", 1, 128, 7, 7, 256, 3, 3, 1, 1, kSame, true},
    {"fmnist_conv5_256to256_7", 1, 256, 7, 7, 256, 3, 3, 1, 1, kSame, true},
    {"mnist_conv1_1to16_valid_28", 3, 1, 28, 28, 16, 3, 3, 1, 1, kValid, true},
    {"mnist_conv2_16to32_valid_13", 3, 16, 13, 13, 32, 3, 3, 1, 1, kValid, true},
};

// gtest names a failing case by this rather than by its bytes.
void PrintTo(const ConvCase& cc, std::ostream* os) { *os << cc.name; }

const ConvCase& by_name(const std::string& name) {
  for (const ConvCase& cc : kCases)
    if (name == cc.name) return cc;
  ADD_FAILURE() << "no case named " << name;
  return kCases[0];
}

// ---------------------------------------------------------------------------------------
// Running the kernels and the reference.

template <class T>
struct ConvTensors {
  std::vector<T> x, w, b, dy;  // b empty: no bias
};
template <class T>
struct ConvResults {
  std::vector<T> y, dx, dw, db;  // db empty: no bias
};

// The variants each case runs. A pass that a variant cannot run on the geometry (direct
// has no backward data; its shared memory limits the shapes) runs the FP32 implicit GEMM.
const ConvVariant kVariants[] = {ConvVariant::Direct, ConvVariant::Igemm, ConvVariant::IgemmTf32,
                                 ConvVariant::Igemm128, ConvVariant::IgemmTf32x128};

bool is_tf32(ConvVariant v) {
  return v == ConvVariant::IgemmTf32 || v == ConvVariant::IgemmTf32x128;
}

ConvOptions options_for(ConvPass pass, const Conv2dGeometry& g, ConvVariant v) {
  ConvOptions o;
  if (v != ConvVariant::Auto)
    o.variant = cnnk::conv2d_variant_supports(pass, g, v).ok ? v : ConvVariant::Igemm;
  return o;
}
std::string variant_of(ConvPass pass, const Conv2dGeometry& g, ConvVariant v) {
  return cnnk::conv2d_variant_name(cnnk::conv2d_variant(pass, g, options_for(pass, g, v)));
}

// TF32 needs compute capability 8.0; older devices skip the TF32 variants.
bool runnable(ConvVariant v) { return !is_tf32(v) || cnnk::conv2d_device_has_tf32(); }

// Bounds for a pass that ran variant v (the bias gradient is always FP32).
std::vector<double> bounds_for(ConvVariant v, const std::vector<double>& scale, double length) {
  return is_tf32(v) ? test::tf32_reduction_bounds(scale, length)
                    : test::reduction_bounds(scale, length);
}

// All three passes on the GPU, every output (and the workspace) poisoned with NaN first;
// each pass with variant v where it can run it (Auto: the launchers' own choice).
void run_gpu(const Conv2dGeometry& g, const ConvTensors<float>& in, ConvResults<float>& out,
             ConvVariant v = ConvVariant::Auto) {
  const bool bias = !in.b.empty();
  const ConvOptions fwd = options_for(ConvPass::Forward, g, v);
  const ConvOptions data = options_for(ConvPass::BackwardData, g, v);
  const ConvOptions filter = options_for(ConvPass::BackwardFilter, g, v);
  DeviceBuffer<float> x(in.x), w(in.w), b(in.b), dy(in.dy);
  DeviceBuffer<float> y(sz(g.output_size())), dx(sz(g.input_size())), dw(sz(g.filter_size())),
      db(bias ? sz(g.k) : 0);
  const size_t ws_bytes = cnnk::conv2d_backward_filter_workspace_bytes(g, filter);
  const size_t fwd_bytes = cnnk::conv2d_forward_workspace_bytes(g, fwd);
  const size_t data_bytes = cnnk::conv2d_backward_data_workspace_bytes(g, data);
  DeviceBuffer<float> ws((ws_bytes + sizeof(float) - 1) / sizeof(float)),
      fwd_ws((fwd_bytes + sizeof(float) - 1) / sizeof(float)),
      data_ws((data_bytes + sizeof(float) - 1) / sizeof(float));
  for (const DeviceBuffer<float>* buf :
       {&x, &w, &b, &dy, &y, &dx, &dw, &db, &ws, &fwd_ws, &data_ws})
    ASSERT_TRUE(buf->ok()) << "device allocation or upload failed";
  for (DeviceBuffer<float>* buf : {&y, &dx, &dw, &db, &ws, &fwd_ws, &data_ws})
    CNN_CUDA_OK(buf->fill_bytes(0xFF));

  CNN_CUDA_OK(cnnk::conv2d_forward(g, x.get(), w.get(), bias ? b.get() : nullptr, y.get(),
                                   fwd_ws.get(), fwd_bytes, nullptr, ActKind::Linear, fwd));
  CNN_CUDA_OK(cnnk::conv2d_backward_data(g, dy.get(), w.get(), dx.get(), data_ws.get(), data_bytes,
                                         nullptr, data));
  CNN_CUDA_OK(cnnk::conv2d_backward_filter(g, x.get(), dy.get(), dw.get(), ws.get(), ws_bytes,
                                           nullptr, filter));
  // The layers' bias gradient (cnnk/bias.h), over the same dy.
  if (bias) {
    const int64_t pq = int64_t(g.p) * g.q;
    const size_t bias_bytes = cnnk::bias_backward_workspace_bytes(g.n, g.k, pq);
    DeviceBuffer<float> bias_ws((bias_bytes + sizeof(float) - 1) / sizeof(float));
    ASSERT_TRUE(bias_ws.ok());
    CNN_CUDA_OK(
        cnnk::bias_backward(g.n, g.k, pq, dy.get(), db.get(), bias_ws.get(), bias_bytes, nullptr));
  }
  CNN_CUDA_OK(test::sync_status());
  out.y = y.download();
  out.dx = dx.download();
  out.dw = dw.download();
  out.db = db.download();
  ASSERT_EQ(out.y.size(), y.size()) << "download failed";
  ASSERT_EQ(out.dx.size(), dx.size()) << "download failed";
  ASSERT_EQ(out.dw.size(), dw.size()) << "download failed";
  ASSERT_EQ(out.db.size(), db.size()) << "download failed";
}

template <class T>
ConvResults<T> run_reference(const Conv2dGeometry& g, const ConvTensors<T>& in) {
  ConvResults<T> out;
  const bool bias = !in.b.empty();
  out.y.resize(sz(g.output_size()));
  out.dx.resize(sz(g.input_size()));
  out.dw.resize(sz(g.filter_size()));
  out.db.resize(bias ? sz(g.k) : 0);
  ref::conv2d_forward<T>(g, in.x.data(), in.w.data(), bias ? in.b.data() : nullptr, out.y.data());
  ref::conv2d_backward_data<T>(g, in.dy.data(), in.w.data(), out.dx.data());
  ref::conv2d_backward_filter<T>(g, in.x.data(), in.dy.data(), out.dw.data(),
                                 bias ? out.db.data() : nullptr);
  return out;
}

ConvTensors<float> random_tensors(const Conv2dGeometry& g, bool bias, uint64_t seed) {
  ConvTensors<float> t;
  t.x = cast_all<float>(test::random_values(sz(g.input_size()), seed));
  t.w = cast_all<float>(test::random_values(sz(g.filter_size()), seed + 1));
  if (bias) t.b = cast_all<float>(test::random_values(sz(g.k), seed + 2));
  t.dy = cast_all<float>(test::random_values(sz(g.output_size()), seed + 3));
  return t;
}

ConvTensors<float> integer_tensors(const Conv2dGeometry& g, bool bias, uint64_t seed) {
  ConvTensors<float> t;
  t.x = test::small_integers(sz(g.input_size()), seed, 3);
  t.w = test::small_integers(sz(g.filter_size()), seed + 1, 3);
  if (bias) t.b = test::small_integers(sz(g.k), seed + 2, 3);
  t.dy = test::small_integers(sz(g.output_size()), seed + 3, 3);
  return t;
}

ConvTensors<double> to_double(const ConvTensors<float>& t, bool absolute) {
  ConvTensors<double> d{cast_all<double>(t.x), cast_all<double>(t.w), cast_all<double>(t.b),
                        cast_all<double>(t.dy)};
  if (absolute) {
    d.x = test::abs_all(d.x);
    d.w = test::abs_all(d.w);
    d.b = test::abs_all(d.b);
    d.dy = test::abs_all(d.dy);
  }
  return d;
}

// ---------------------------------------------------------------------------------------
// The sweep.

class Conv2dKernelSweep : public ::testing::TestWithParam<ConvCase> {};

// Random values in [-1, 1): each result within atol + rtol * sqrt(L) * sum|terms| of the
// double reference, L the length of its reduction; the sums of |terms| come from the
// reference run on absolute values.
// TF32 results get the bound of tf32_reduction_bounds (2^-9 of the sum of |terms| for
// the rounded inputs, plus the FP32 accumulation's).
TEST_P(Conv2dKernelSweep, MatchesReference) {
  CNN_REQUIRE_GPU();
  const ConvCase& cc = GetParam();
  const Conv2dGeometry g = geometry_of(cc);
  SCOPED_TRACE(describe(g));
  std::printf("  %s\n", describe(g).c_str());
  const ConvTensors<float> in = random_tensors(g, cc.bias, 1000);
  const ConvResults<double> want = run_reference(g, to_double(in, false));
  const ConvResults<double> scale = run_reference(g, to_double(in, true));
  const double forward_len = double(g.c) * g.r * g.s + (cc.bias ? 1 : 0);
  const double data_len = double(g.k) * g.r * g.s;
  const double filter_len = double(g.n) * g.p * g.q;

  std::map<ConvVariant, ConvResults<float>> results;
  for (const ConvVariant v : kVariants) {
    if (!runnable(v)) continue;
    SCOPED_TRACE(cnnk::conv2d_variant_name(v));
    ConvResults<float>& got = results[v];
    run_gpu(g, in, got, v);
    if (HasFatalFailure()) return;
    const ConvVariant fwd = options_for(ConvPass::Forward, g, v).variant;
    const ConvVariant data = options_for(ConvPass::BackwardData, g, v).variant;
    const ConvVariant filter = options_for(ConvPass::BackwardFilter, g, v).variant;
    test::expect_within(variant_of(ConvPass::Forward, g, v) + " forward y", got.y, want.y,
                        bounds_for(fwd, scale.y, forward_len));
    test::expect_within(variant_of(ConvPass::BackwardData, g, v) + " backward data dx", got.dx,
                        want.dx, bounds_for(data, scale.dx, data_len));
    test::expect_within(variant_of(ConvPass::BackwardFilter, g, v) + " backward filter dw", got.dw,
                        want.dw, bounds_for(filter, scale.dw, filter_len));
    if (cc.bias)
      test::expect_within("bias grad db", got.db, want.db,
                          test::reduction_bounds(scale.db, filter_len));
  }

  // The 128x128x8 tiles give each output the same sequence of FMAs (igemm-128) or of
  // m16n16k8 products at the same place in a fragment (igemm-tf32-128) as the 64x64x16
  // tiles, over the same split of the reduction: the same bits, whatever the values.
  for (const auto& [small, large] :
       {std::pair{ConvVariant::Igemm, ConvVariant::Igemm128},
        std::pair{ConvVariant::IgemmTf32, ConvVariant::IgemmTf32x128}}) {
    if (!results.count(small) || !results.count(large)) continue;
    SCOPED_TRACE(std::string(cnnk::conv2d_variant_name(large)) + " vs " +
                 cnnk::conv2d_variant_name(small));
    const ConvResults<float>& a = results.at(small);
    const ConvResults<float>& b = results.at(large);
    EXPECT_TRUE(test::all_equal("forward y", b.y, a.y));
    EXPECT_TRUE(test::all_equal("backward data dx", b.dx, a.dx));
    EXPECT_TRUE(test::all_equal("backward filter dw", b.dw, a.dw));
  }
}

// Small integers: every product and partial sum is an integer below 2^24, exact in float
// in any order, so the kernels must agree with the reference bit for bit. That includes
// TF32: integers of magnitude at most 3 need 2 significant bits, well within its 11.
void check_exact(const ConvCase& cc, uint64_t seed) {
  const Conv2dGeometry g = geometry_of(cc);
  SCOPED_TRACE(describe(g));
  // Largest possible |partial sum|: 9 per product, 3 for the bias.
  const double largest = 9.0 * std::max<double>({double(g.c) * g.r * g.s, double(g.k) * g.r * g.s,
                                                 double(g.n) * g.p * g.q}) +
                         3.0;
  ASSERT_LT(largest, 16777216.0) << "the case is too large to be exact in float";
  const ConvTensors<float> in = integer_tensors(g, cc.bias, seed);
  const ConvResults<float> want = run_reference(g, in);  // double accumulation: exact
  for (const ConvVariant v : kVariants) {
    if (!runnable(v)) continue;
    SCOPED_TRACE(cnnk::conv2d_variant_name(v));
    ConvResults<float> got;
    run_gpu(g, in, got, v);
    if (::testing::Test::HasFatalFailure()) return;
    EXPECT_TRUE(test::all_equal(variant_of(ConvPass::Forward, g, v) + " forward y", got.y, want.y));
    EXPECT_TRUE(test::all_equal(variant_of(ConvPass::BackwardData, g, v) + " backward data dx",
                                got.dx, want.dx));
    EXPECT_TRUE(test::all_equal(variant_of(ConvPass::BackwardFilter, g, v) + " backward filter dw",
                                got.dw, want.dw));
    EXPECT_TRUE(test::all_equal("bias grad db", got.db, want.db));
  }
}

TEST_P(Conv2dKernelSweep, ExactOnSmallIntegers) {
  CNN_REQUIRE_GPU();
  check_exact(GetParam(), 2000);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv2dKernelSweep, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ConvCase>& param) {
                           return std::string(param.param.name);
                         });

// Random geometries from a fixed seed: combinations of size, stride, padding and channel
// counts that the hand-picked cases do not list, held to the reference's bits as above.
TEST(Conv2dKernelRandom, ExactOnSmallIntegers) {
  CNN_REQUIRE_GPU();
  std::mt19937 rng(20261121);
  const auto pick = [&rng](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  int checked = 0;
  while (checked < 40) {
    ConvCase cc{"random",   pick(1, 4), pick(1, 24), pick(1, 20), pick(1, 20), pick(1, 70),
                pick(1, 7), pick(1, 7), pick(1, 3),  pick(1, 3),  kValid,      pick(0, 1) == 1};
    const int mode = pick(0, 2);
    if (mode == 1) cc.pad = kSame;
    if (mode == 2) cc.pad = pad(pick(0, 3), pick(0, 3), pick(0, 3), pick(0, 3));
    try {
      const Conv2dGeometry g = geometry_of(cc);
      if (g.p < 1 || g.q < 1) continue;
    } catch (const ConfigError&) {
      continue;  // no output for this input: not a convolution to test
    }
    ++checked;
    check_exact(cc, 2100 + static_cast<uint64_t>(checked));
    if (HasFailure()) return;  // the trace names the geometry
  }
}

// ---------------------------------------------------------------------------------------
// Queries: no device needed.

TEST(Conv2dKernelSupport, DilationGoesToCudnnEverythingElseIsNative) {
  for (const ConvCase& cc : kCases) {
    const cnnk::Support s = cnnk::conv2d_supports(geometry_of(cc));
    EXPECT_TRUE(s.ok) << cc.name << ": " << s.reason;
  }
  Conv2dGeometry g = geometry_of(by_name("k3_valid_c3_k17"));
  g.dil_h = 2;
  cnnk::Support s = cnnk::conv2d_supports(g);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(std::string(s.reason), "dilation > 1: use cuDNN");
  g.dil_h = 1;
  g.dil_w = 3;
  s = cnnk::conv2d_supports(g);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(std::string(s.reason), "dilation > 1: use cuDNN");
  // The launchers refuse what is not supported, before touching the device.
  EXPECT_EQ(cnnk::conv2d_forward(g, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::conv2d_backward_data(g, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::conv2d_backward_filter(g, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
}

TEST(Conv2dKernelSupport, RefusesBeyondThirtyTwoBitIndexing) {
  Conv2dGeometry g = geometry_of(by_name("k3_valid_c3_k17"));
  g.n = 1 << 24;  // N*P*Q far beyond 2^30
  const cnnk::Support s = cnnk::conv2d_supports(g);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(std::string(s.reason).find("2^30"), std::string::npos) << s.reason;

  // A filter of 2^28 * 9 floats, on a 3x3 input: every other product is small, but the
  // kernels index within the filter in 32 bits.
  Conv2dGeometry f = geometry_of(by_name("k3_valid_c3_k17"));
  f.c = 1 << 13;
  f.k = 1 << 15;
  f.h = f.w = 3;
  f.p = f.q = 1;
  const cnnk::Support filter = cnnk::conv2d_supports(f);
  EXPECT_FALSE(filter.ok);
  EXPECT_NE(std::string(filter.reason).find("2^30"), std::string::npos) << filter.reason;
  f.k = 1 << 13;  // 2^26 * 9: within reach
  EXPECT_TRUE(cnnk::conv2d_supports(f).ok);

  // 1x1 filters on a 1x1 input: every product is small, but grid.y counts the tiles of K
  // (or of C), 64 filters to a tile, and stops at 65535.
  Conv2dGeometry wide = geometry_of(by_name("k3_valid_c3_k17"));
  wide.n = wide.c = wide.h = wide.w = wide.p = wide.q = wide.r = wide.s = 1;
  wide.k = 65535 * 64;
  EXPECT_TRUE(cnnk::conv2d_supports(wide).ok);
  wide.k += 1;
  const cnnk::Support too_many = cnnk::conv2d_supports(wide);
  EXPECT_FALSE(too_many.ok);
  EXPECT_NE(std::string(too_many.reason).find("65535"), std::string::npos) << too_many.reason;
  std::swap(wide.c, wide.k);
  EXPECT_FALSE(cnnk::conv2d_supports(wide).ok);

  // A negative padding (a crop) near -2^30 on rows reaching 2^30: p*stride - pad passes
  // 2^31 in the kernels' 32-bit arithmetic although p*stride + r + pad does not.
  Conv2dGeometry crop = geometry_of(by_name("k3_valid_c3_k17"));
  crop.n = crop.c = crop.k = 1;
  crop.r = crop.s = 1;
  crop.w = crop.q = 1;
  crop.h = 1;
  crop.p = 1 << 14;
  crop.stride_h = 1 << 16;  // p * stride = 2^30 - 2^16
  crop.pad_top = -(1 << 29);
  const cnnk::Support cropped = cnnk::conv2d_supports(crop);
  EXPECT_FALSE(cropped.ok);
  EXPECT_NE(std::string(cropped.reason).find("2^30"), std::string::npos) << cropped.reason;
  crop.pad_top = -4;  // the same rows with a small crop: every index fits
  crop.stride_h = 1 << 10;
  EXPECT_TRUE(cnnk::conv2d_supports(crop).ok) << cnnk::conv2d_supports(crop).reason;
}

// The implicit GEMM's workspace holds a whole number (2 to 32) of partial filter
// gradients when the reduction over N*P*Q is split: never for short reductions (at most
// 512), always for long ones (over 4096).
TEST(Conv2dKernelWorkspace, SizedForTheSplitReduction) {
  ConvOptions igemm;
  igemm.variant = ConvVariant::Igemm;
  for (const ConvCase& cc : kCases) {
    const Conv2dGeometry g = geometry_of(cc);
    const size_t bytes = cnnk::conv2d_backward_filter_workspace_bytes(g, igemm);
    const int64_t npq = int64_t(g.n) * g.p * g.q;
    const size_t partial = sz(g.filter_size()) * sizeof(float);
    if (npq <= 512) {
      EXPECT_EQ(bytes, 0u) << cc.name;
    }
    if (npq > 4096) {
      EXPECT_GT(bytes, 0u) << cc.name;
    }
    if (bytes > 0) {
      EXPECT_EQ(bytes % partial, 0u) << cc.name;
      EXPECT_GE(bytes / partial, 2u) << cc.name;
      EXPECT_LE(bytes / partial, 32u) << cc.name;
    }
    EXPECT_EQ(bytes, cnnk::conv2d_backward_filter_workspace_bytes(g, igemm)) << cc.name;
    // TF32 multiplies the same tiles, and the 128x128 tiles split alike: the same split.
    for (const ConvVariant other :
         {ConvVariant::IgemmTf32, ConvVariant::Igemm128, ConvVariant::IgemmTf32x128}) {
      ConvOptions o;
      o.variant = other;
      EXPECT_EQ(bytes, cnnk::conv2d_backward_filter_workspace_bytes(g, o)) << cc.name;
    }
  }
  const Conv2dGeometry capped = geometry_of(by_name("split_capped_at_32"));
  EXPECT_EQ(cnnk::conv2d_backward_filter_workspace_bytes(capped, igemm),
            32u * sz(capped.filter_size()) * sizeof(float));

  // A workspace smaller than asked for is refused before any launch, for every variant.
  const Conv2dGeometry g = geometry_of(by_name("split_many_chunks"));
  for (const ConvVariant v : kVariants) {
    ConvOptions o;
    o.variant = v;
    const size_t need = cnnk::conv2d_backward_filter_workspace_bytes(g, o);
    ASSERT_GT(need, 0u) << cnnk::conv2d_variant_name(v);
    float* fake = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced
    EXPECT_EQ(cnnk::conv2d_backward_filter(g, fake, fake, fake, fake, need - 1, nullptr, o),
              cudaErrorInvalidValue);
    EXPECT_EQ(cnnk::conv2d_backward_filter(g, fake, fake, fake, nullptr, need, nullptr, o),
              cudaErrorInvalidValue);
  }
}

// The direct backward filter sums one partial per split of the N*P*Q pixels (at most
// 256; none for a single split), and the default options ask for what the chosen
// variant needs.
TEST(Conv2dKernelWorkspace, DirectSplitsArePartialsOfTheFilter) {
  ConvOptions direct;
  direct.variant = ConvVariant::Direct;
  int direct_cases = 0;
  for (const ConvCase& cc : kCases) {
    const Conv2dGeometry g = geometry_of(cc);
    const ConvVariant chosen = cnnk::conv2d_variant(ConvPass::BackwardFilter, g);
    ConvOptions same;
    same.variant = chosen;
    EXPECT_EQ(cnnk::conv2d_backward_filter_workspace_bytes(g),
              cnnk::conv2d_backward_filter_workspace_bytes(g, same))
        << cc.name;
    if (!cnnk::conv2d_variant_supports(ConvPass::BackwardFilter, g, ConvVariant::Direct).ok) {
      EXPECT_EQ(cnnk::conv2d_backward_filter_workspace_bytes(g, direct), 0u) << cc.name;
      continue;
    }
    ++direct_cases;
    const size_t bytes = cnnk::conv2d_backward_filter_workspace_bytes(g, direct);
    const size_t partial = sz(g.filter_size()) * sizeof(float);
    if (bytes > 0) {
      EXPECT_EQ(bytes % partial, 0u) << cc.name;
      EXPECT_GE(bytes / partial, 2u) << cc.name;
      EXPECT_LE(bytes / partial, 256u) << cc.name;
    }
  }
  EXPECT_GT(direct_cases, 10);
}

// Forward and backward data split their reduction only when the output has too few tiles
// to fill the GPU: fashion-cnn's last conv layer (7x7, 256 -> 256) at batch 32 has 100
// tiles of 64x64 and is split, at batch 256 it has 784 and is not. A split launch needs
// its workspace (refused without it, before anything runs: no device needed); the sweep
// above runs both kinds against the reference (its batch-1 fashion shapes split).
TEST(Conv2dKernelSplit, SmallBatchesSplitTheReductionIntoTheWorkspace) {
  Conv2dGeometry g = geometry_of(by_name("fmnist_conv5_256to256_7"));
  for (const ConvVariant v : kVariants) {
    SCOPED_TRACE(cnnk::conv2d_variant_name(v));
    const ConvOptions fwd = options_for(ConvPass::Forward, g, v);
    const ConvOptions data = options_for(ConvPass::BackwardData, g, v);
    g.n = 256;
    EXPECT_EQ(cnnk::conv2d_forward_workspace_bytes(g, fwd), 0u);
    EXPECT_EQ(cnnk::conv2d_backward_data_workspace_bytes(g, data), 0u);
    g.n = 32;
    const size_t fwd_bytes = cnnk::conv2d_forward_workspace_bytes(g, fwd);
    const size_t data_bytes = cnnk::conv2d_backward_data_workspace_bytes(g, data);
    // Whole partial outputs, at least two of them.
    const size_t out_bytes = sz(g.output_size()) * sizeof(float);
    const size_t in_bytes = sz(g.input_size()) * sizeof(float);
    EXPECT_GE(fwd_bytes, 2 * out_bytes);
    EXPECT_EQ(fwd_bytes % out_bytes, 0u);
    EXPECT_GE(data_bytes, 2 * in_bytes);
    EXPECT_EQ(data_bytes % in_bytes, 0u);
    float* fake = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced
    EXPECT_EQ(cnnk::conv2d_forward(g, fake, fake, fake, fake, fake, fwd_bytes - 1, nullptr,
                                   ActKind::Linear, fwd),
              cudaErrorInvalidValue);
    EXPECT_EQ(cnnk::conv2d_forward(g, fake, fake, fake, fake, nullptr, fwd_bytes, nullptr,
                                   ActKind::Linear, fwd),
              cudaErrorInvalidValue);
    EXPECT_EQ(cnnk::conv2d_backward_data(g, fake, fake, fake, fake, data_bytes - 1, nullptr, data),
              cudaErrorInvalidValue);
  }
  // A short reduction is never split, however few the tiles (the first layer: C*R*S 49).
  const Conv2dGeometry first = geometry_of(by_name("fmnist_conv1_1to64_k7_28"));
  ConvOptions igemm;
  igemm.variant = ConvVariant::Igemm;
  EXPECT_EQ(cnnk::conv2d_forward_workspace_bytes(first, igemm), 0u);
}

// Empty problems launch nothing.
TEST(Conv2dKernelEmpty, ZeroBatchForwardAndBackwardDataDoNothing) {
  Conv2dGeometry g = geometry_of(by_name("k3_valid_c3_k17"));
  g.n = 0;
  EXPECT_TRUE(cnnk::conv2d_supports(g).ok);
  EXPECT_EQ(cnnk::conv2d_forward(g, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::conv2d_backward_data(g, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::conv2d_backward_filter_workspace_bytes(g), 0u);
  EXPECT_EQ(cnnk::conv2d_forward_workspace_bytes(g), 0u);
  EXPECT_EQ(cnnk::conv2d_backward_data_workspace_bytes(g), 0u);
}

// Which kernel runs is a pure function of the pass, the geometry and the options.
TEST(Conv2dKernelVariants, FirstLayersRunTheDirectKernel) {
  ConvOptions tf32, large, both;
  tf32.tf32 = true;
  large.large_tiles = true;
  both.tf32 = both.large_tiles = true;
  for (const char* name : {"fmnist_conv1_1to64_k7_28", "mnist_conv1_1to16_valid_28",
                           "k3_valid_c3_k17", "k7_same_s2_13"}) {
    const Conv2dGeometry g = geometry_of(by_name(name));
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::Forward, g), ConvVariant::Direct) << name;
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::BackwardFilter, g), ConvVariant::Direct) << name;
    // Direct is exact FP32, and chosen with TF32 allowed too.
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::Forward, g, tf32), ConvVariant::Direct) << name;
    // Backward data has no direct kernel.
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::BackwardData, g), ConvVariant::Igemm) << name;
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::BackwardData, g, tf32), ConvVariant::IgemmTf32)
        << name;
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::Forward, g, large), ConvVariant::Direct) << name;
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::BackwardData, g, large), ConvVariant::Igemm128)
        << name;
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::Forward, g, both), ConvVariant::Direct) << name;
    EXPECT_EQ(cnnk::conv2d_variant(ConvPass::BackwardData, g, both), ConvVariant::IgemmTf32x128)
        << name;
  }
  for (const char* name : {"fmnist_conv2_64to128_14", "fmnist_conv5_256to256_7", "c130_k1"}) {
    const Conv2dGeometry g = geometry_of(by_name(name));
    for (const ConvPass pass :
         {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardFilter}) {
      EXPECT_EQ(cnnk::conv2d_variant(pass, g), ConvVariant::Igemm) << name;
      EXPECT_EQ(cnnk::conv2d_variant(pass, g, tf32), ConvVariant::IgemmTf32) << name;
      EXPECT_EQ(cnnk::conv2d_variant(pass, g, large), ConvVariant::Igemm128) << name;
      EXPECT_EQ(cnnk::conv2d_variant(pass, g, both), ConvVariant::IgemmTf32x128) << name;
    }
  }
  EXPECT_STREQ(cnnk::conv2d_variant_name(ConvVariant::Direct), "direct");
  EXPECT_STREQ(cnnk::conv2d_variant_name(ConvVariant::Igemm), "igemm");
  EXPECT_STREQ(cnnk::conv2d_variant_name(ConvVariant::IgemmTf32), "igemm-tf32");
  EXPECT_STREQ(cnnk::conv2d_variant_name(ConvVariant::Igemm128), "igemm-128");
  EXPECT_STREQ(cnnk::conv2d_variant_name(ConvVariant::IgemmTf32x128), "igemm-tf32-128");
  EXPECT_STREQ(cnnk::conv2d_variant_name(ConvVariant::Auto), "auto");
}

// A forced variant that cannot run is refused before anything touches the device.
TEST(Conv2dKernelVariants, ForcedDirectIsRefusedWhereItCannotRun) {
  ConvOptions direct;
  direct.variant = ConvVariant::Direct;
  const Conv2dGeometry first = geometry_of(by_name("fmnist_conv1_1to64_k7_28"));
  const cnnk::Support data =
      cnnk::conv2d_variant_supports(ConvPass::BackwardData, first, ConvVariant::Direct);
  EXPECT_FALSE(data.ok);
  EXPECT_NE(std::string(data.reason).find("backward-data"), std::string::npos) << data.reason;
  EXPECT_EQ(
      cnnk::conv2d_backward_data(first, nullptr, nullptr, nullptr, nullptr, 0, nullptr, direct),
      cudaErrorInvalidValue);

  const Conv2dGeometry wide = geometry_of(by_name("fmnist_conv2_64to128_14"));  // C*R*S 576
  for (const ConvPass pass : {ConvPass::Forward, ConvPass::BackwardFilter}) {
    const cnnk::Support s = cnnk::conv2d_variant_supports(pass, wide, ConvVariant::Direct);
    EXPECT_FALSE(s.ok);
    EXPECT_NE(std::string(s.reason).find("C*R*S"), std::string::npos) << s.reason;
  }
  EXPECT_EQ(cnnk::conv2d_forward(wide, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                                 ActKind::Linear, direct),
            cudaErrorInvalidValue);
  EXPECT_EQ(
      cnnk::conv2d_backward_filter(wide, nullptr, nullptr, nullptr, nullptr, 0, nullptr, direct),
      cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::conv2d_backward_filter_workspace_bytes(wide, direct), 0u);

  Conv2dGeometry big_window = first;  // 11x11: past the direct kernel's 9x9
  big_window.r = big_window.s = 11;
  big_window.pad_top = big_window.pad_left = 5;
  EXPECT_FALSE(
      cnnk::conv2d_variant_supports(ConvPass::Forward, big_window, ConvVariant::Direct).ok);
  EXPECT_EQ(cnnk::conv2d_variant(ConvPass::Forward, big_window), ConvVariant::Igemm);
  // The implicit GEMM takes every supported geometry.
  for (const ConvCase& cc : kCases)
    for (const ConvVariant v : {ConvVariant::Igemm, ConvVariant::IgemmTf32, ConvVariant::Igemm128,
                                ConvVariant::IgemmTf32x128})
      EXPECT_TRUE(cnnk::conv2d_variant_supports(ConvPass::BackwardData, geometry_of(cc), v).ok)
          << cc.name;
}

// ---------------------------------------------------------------------------------------
// Device behaviour beyond the sweep.

// With no batch, dw is an empty sum: assigned zeros, not left alone.
TEST(Conv2dKernelEmpty, ZeroBatchBackwardFilterAssignsZeros) {
  CNN_REQUIRE_GPU();
  Conv2dGeometry g = geometry_of(by_name("k3_valid_c3_k17"));
  g.n = 0;
  DeviceBuffer<float> dw(sz(g.filter_size()));
  ASSERT_TRUE(dw.ok());
  CNN_CUDA_OK(dw.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::conv2d_backward_filter(g, nullptr, nullptr, dw.get(), nullptr, 0, nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("dw", dw.download(), std::vector<float>(dw.size(), 0.f)));
}

// Zero-width planes under a large batch and height: N*P*Q is 0, while N*P alone passes
// 2^31 (so the rows are counted in 64 bits; the sanitizer build would report the overflow
// of an int product). Every GEMM variant assigns dw its zeros.
TEST(Conv2dKernelEmpty, ZeroWidthPlanesWithAHugeBatchAssignZeros) {
  CNN_REQUIRE_GPU();
  Conv2dGeometry g;
  g.n = 65536, g.c = 1, g.h = 65536, g.w = 0, g.k = 1, g.r = g.s = 1, g.p = 65536, g.q = 0;
  ASSERT_TRUE(cnnk::conv2d_supports(g).ok);
  for (const ConvVariant v : {ConvVariant::Igemm, ConvVariant::IgemmTf32, ConvVariant::Igemm128,
                              ConvVariant::IgemmTf32x128}) {
    if (!runnable(v)) continue;
    ConvOptions o;
    o.variant = v;
    SCOPED_TRACE(cnnk::conv2d_variant_name(v));
    DeviceBuffer<float> dw(sz(g.filter_size()));
    ASSERT_TRUE(dw.ok());
    CNN_CUDA_OK(dw.fill_bytes(0xFF));
    ASSERT_EQ(cnnk::conv2d_backward_filter_workspace_bytes(g, o), 0u);
    CNN_CUDA_OK(
        cnnk::conv2d_backward_filter(g, nullptr, nullptr, dw.get(), nullptr, 0, nullptr, o));
    EXPECT_EQ(cnnk::conv2d_forward(g, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                                   ActKind::Linear, o),
              cudaSuccess);
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("dw", dw.download(), std::vector<float>(dw.size(), 0.f)));
  }
}

// Outputs are assigned, never accumulated: NaN poison is overwritten everywhere, including
// the inputs no output reads (their dx is an exact 0) and outputs that see only padding.
TEST(Conv2dKernelPoison, EveryOutputIsAssigned) {
  CNN_REQUIRE_GPU();
  for (const char* name :
       {"pointwise_s3_mostly_unread", "explicit_pad_wider_than_kernel", "k2_stride3_gaps"}) {
    const ConvCase& cc = by_name(name);
    const Conv2dGeometry g = geometry_of(cc);
    SCOPED_TRACE(describe(g));
    for (const ConvVariant variant : kVariants) {
      if (!runnable(variant)) continue;
      SCOPED_TRACE(cnnk::conv2d_variant_name(variant));
      ConvResults<float> got;
      run_gpu(g, random_tensors(g, cc.bias, 3000), got, variant);
      if (HasFatalFailure()) return;
      size_t nan = 0, zero_dx = 0;
      for (const std::vector<float>* v : {&got.y, &got.dx, &got.dw, &got.db})
        for (float f : *v) nan += std::isnan(f) ? 1 : 0;
      for (float f : got.dx) zero_dx += f == 0.f ? 1 : 0;
      EXPECT_EQ(nan, 0u) << cc.name;
      if (cc.sh > cc.kh) {
        EXPECT_GT(zero_dx, 0u) << cc.name << ": expected unread inputs";
      }
    }
  }
}

// Backward filter is a pure function of its inputs: same bits on every run, also when the
// reduction is split into chunks (fixed-order sums, no atomics).
TEST(Conv2dKernelDeterminism, BackwardFilterRepeatsBitForBit) {
  CNN_REQUIRE_GPU();
  CNN_SKIP_IN_SIMULATOR();
  for (const char* name : {"split_many_chunks", "split_uneven_last_chunk", "split_capped_at_32",
                           "fmnist_conv1_1to64_k7_28"}) {
    const ConvCase& cc = by_name(name);
    const Conv2dGeometry g = geometry_of(cc);
    SCOPED_TRACE(describe(g));
    const ConvTensors<float> in = random_tensors(g, cc.bias, 4000);
    for (const ConvVariant v : kVariants) {
      if (!runnable(v)) continue;
      SCOPED_TRACE(cnnk::conv2d_variant_name(v));
      ConvResults<float> first, second;
      run_gpu(g, in, first, v);
      if (HasFatalFailure()) return;
      run_gpu(g, in, second, v);
      if (HasFatalFailure()) return;
      EXPECT_TRUE(test::all_equal("dw", second.dw, first.dw));
      EXPECT_TRUE(test::all_equal("db", second.db, first.db));
    }
  }
}

// The activation fused into the forward epilogue gives the bits of the separate pass
// (conv, then cnnk::activation_forward in place), for every variant and activation; and
// ReLU of the convolution stays within the convolution's bound of the reference (ReLU
// never widens an error).
constexpr size_t kMaxForwardWorkspace = size_t(4) << 20;
TEST(Conv2dKernelFused, EpilogueActivationEqualsTheSeparatePass) {
  CNN_REQUIRE_GPU();
  // The last two split their reduction (few output tiles, a long C*R*S): the activation
  // then follows the partials' sum.
  for (const char* name :
       {"fmnist_conv1_1to64_k7_28", "mnist_conv1_1to16_valid_28", "k3_same_s2_odd13", "c17_k130_s2",
        "rows_65_k65", "k7_same_on_3x3", "c130_k17_k5", "fmnist_conv4_128to256_7"}) {
    const ConvCase& cc = by_name(name);
    const Conv2dGeometry g = geometry_of(cc);
    SCOPED_TRACE(describe(g));
    const ConvTensors<float> in = random_tensors(g, cc.bias, 5000);
    const ConvResults<double> want = run_reference(g, to_double(in, false));
    const ConvResults<double> scale = run_reference(g, to_double(in, true));
    std::vector<double> want_relu = want.y;
    for (double& v : want_relu) v = v > 0 ? v : 0;
    const double forward_len = double(g.c) * g.r * g.s + (cc.bias ? 1 : 0);

    DeviceBuffer<float> x(in.x), w(in.w), b(in.b), fused(sz(g.output_size())),
        separate(sz(g.output_size())), ws(kMaxForwardWorkspace / sizeof(float));
    for (const DeviceBuffer<float>* buf : {&x, &w, &b, &fused, &separate, &ws})
      ASSERT_TRUE(buf->ok()) << "device allocation or upload failed";
    const float* bias = cc.bias ? b.get() : nullptr;
    for (const ConvVariant v : kVariants) {
      if (!runnable(v)) continue;
      const ConvOptions o = options_for(ConvPass::Forward, g, v);
      SCOPED_TRACE(cnnk::conv2d_variant_name(o.variant));
      for (const ActKind act : {ActKind::Relu, ActKind::Sigmoid, ActKind::Tanh}) {
        CNN_CUDA_OK(fused.fill_bytes(0xFF));
        CNN_CUDA_OK(separate.fill_bytes(0xFF));
        const size_t ws_bytes = cnnk::conv2d_forward_workspace_bytes(g, o);
        ASSERT_LE(ws_bytes, kMaxForwardWorkspace);
        CNN_CUDA_OK(cnnk::conv2d_forward(g, x.get(), w.get(), bias, fused.get(), ws.get(), ws_bytes,
                                         nullptr, act, o));
        CNN_CUDA_OK(cnnk::conv2d_forward(g, x.get(), w.get(), bias, separate.get(), ws.get(),
                                         ws_bytes, nullptr, ActKind::Linear, o));
        CNN_CUDA_OK(cnnk::activation_forward(act, g.output_size(), separate.get(), separate.get(),
                                             nullptr));
        CNN_CUDA_OK(test::sync_status());
        const std::vector<float> got = fused.download();
        EXPECT_TRUE(test::all_equal("fused vs separate", got, separate.download()));
        if (act == ActKind::Relu)
          test::expect_within("fused relu vs reference", got, want_relu,
                              bounds_for(o.variant, scale.y, forward_len));
      }
    }
  }
}

}  // namespace
}  // namespace cnn
