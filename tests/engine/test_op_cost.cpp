// The FLOP and byte formulas of `cnn bench` and `cnn profile`, against values worked out
// by hand for layers of fashion-cnn at batch 32, and the geometries they are applied to,
// rebuilt from the models' layers.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/graph/layers.h"
#include "engine/graph/zoo.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/perf/layer_ops.h"
#include "engine/perf/op_cost.h"

namespace cnn {
namespace {

using perf::OpPass;

// fashion-cnn's first layer at batch 32: Conv 64@7x7 "same" on 1x28x28.
cnnk::Conv2dGeometry fashion_first_conv() {
  Conv2dParams p;
  p.filters = 64;
  p.kernel_h = p.kernel_w = 7;
  p.padding = Padding::same();
  return conv2d_geometry(p, Shape{32, 1, 28, 28});
}

TEST(OpCost, ConvolutionCountsTwoFlopsPerMultiplyAddAndEachTensorOnce) {
  const cnnk::Conv2dGeometry g = fashion_first_conv();
  // 2 * N*K*P*Q * C*R*S = 2 * 32*64*28*28 * 1*7*7.
  const double flops = 2.0 * 32 * 64 * 28 * 28 * 49;
  EXPECT_EQ(flops, 157351936.0);
  // x 32*1*28*28 = 25088, w 64*1*7*7 = 3136, bias 64, y 32*64*28*28 = 1605632 floats.
  const perf::OpCost fwd = perf::conv2d_cost(g, true, OpPass::Forward);
  EXPECT_EQ(fwd.flops, flops);
  EXPECT_EQ(fwd.bytes, 4.0 * (25088 + 3136 + 64 + 1605632));
  const perf::OpCost data = perf::conv2d_cost(g, true, OpPass::BackwardData);
  EXPECT_EQ(data.flops, flops);
  EXPECT_EQ(data.bytes, 4.0 * (1605632 + 3136 + 25088));  // dy, w in; dx out
  const perf::OpCost filter = perf::conv2d_cost(g, true, OpPass::BackwardFilter);
  EXPECT_EQ(filter.flops, flops);
  EXPECT_EQ(filter.bytes, 4.0 * (25088 + 1605632 + 3136 + 64));  // x, dy in; dw, db out
  // Without a bias, neither it nor its gradient moves.
  EXPECT_EQ(perf::conv2d_cost(g, false, OpPass::Forward).bytes, 4.0 * (25088 + 3136 + 1605632));
  EXPECT_THROW(perf::conv2d_cost(g, true, OpPass::Backward), Error);
}

TEST(OpCost, StridedConvolutionCountsItsOutputs) {
  // 3 -> 8 channels, 3x3, stride 2, valid, 9x9 input at batch 2: a 4x4 output.
  Conv2dParams p;
  p.filters = 8;
  p.stride_h = p.stride_w = 2;
  const cnnk::Conv2dGeometry g = conv2d_geometry(p, Shape{2, 3, 9, 9});
  ASSERT_EQ(g.p, 4);
  EXPECT_EQ(perf::conv2d_cost(g, true, OpPass::Forward).flops, 2.0 * 2 * 8 * 4 * 4 * 3 * 3 * 3);
}

TEST(OpCost, PoolingVisitsEachWindowElementOnce) {
  // fashion-cnn's first pooling: max 2x2 on 64x28x28 at batch 32, output 32*64*14*14.
  cnnk::Pool2dGeometry g;
  g.n = 32, g.c = 64, g.h = 28, g.w = 28, g.p = 14, g.q = 14;
  const double x = 32.0 * 64 * 28 * 28, y = 32.0 * 64 * 14 * 14;
  EXPECT_EQ(perf::pool2d_cost(g, OpPass::Forward).flops, y * 4);
  EXPECT_EQ(perf::pool2d_cost(g, OpPass::Forward).bytes, 4.0 * (x + y));
  // Max: x (to find the maxima) and dy in, dx out.
  EXPECT_EQ(perf::pool2d_cost(g, OpPass::Backward).bytes, 4.0 * (x + y + x));
  EXPECT_EQ(perf::pool2d_cost(g, OpPass::Backward).bytes, 14450688.0);
  // Average: dy in, dx out.
  g.mode = cnnk::PoolMode::Average;
  EXPECT_EQ(perf::pool2d_cost(g, OpPass::Backward).bytes, 4.0 * (y + x));
  EXPECT_THROW(perf::pool2d_cost(g, OpPass::BackwardData), Error);
}

TEST(OpCost, BatchNormCountsPerElementAndPerChannel) {
  cnnk::BatchNormGeometry g;
  g.n = 32, g.c = 64, g.spatial = 196;
  const double e = 32.0 * 64 * 196;  // 401408 elements
  const perf::OpCost fwd = perf::batchnorm_cost(g, OpPass::Forward);
  EXPECT_EQ(fwd.flops, 8 * e);
  // x, y; gamma, beta, running mean and variance read, running mean and variance, saved
  // mean and inverse deviation written: 8 per channel.
  EXPECT_EQ(fwd.bytes, 4.0 * (2 * e + 8 * 64));
  const perf::OpCost bwd = perf::batchnorm_cost(g, OpPass::Backward);
  EXPECT_EQ(bwd.flops, 10 * e);
  EXPECT_EQ(bwd.bytes, 4.0 * (3 * e + 5 * 64));
}

TEST(OpCost, DenseIsAMatrixProduct) {
  // fashion-cnn's first Dense: 2304 -> 128 at batch 32.
  const cnnk::DenseGeometry g{32, 2304, 128};
  EXPECT_EQ(perf::dense_cost(g, true, OpPass::Forward).flops, 18874368.0);
  EXPECT_EQ(perf::dense_cost(g, true, OpPass::Forward).bytes,
            4.0 * (32 * 2304 + 2304 * 128 + 128 + 32 * 128));
  EXPECT_EQ(perf::dense_cost(g, true, OpPass::BackwardWeights).flops, 18874368.0);
  EXPECT_EQ(perf::dense_cost(g, false, OpPass::BackwardData).bytes,
            4.0 * (32 * 128 + 2304 * 128 + 32 * 2304));
}

TEST(OpCost, RatesAreWorkOverTime) {
  const perf::OpCost c{2e9, 3e9};  // 2 GFLOP and 3 GB in 1 ms: 2 TFLOP/s, 3000 GB/s
  EXPECT_DOUBLE_EQ(perf::tflops_per_second(c, 1.0), 2.0);
  EXPECT_DOUBLE_EQ(perf::gigabytes_per_second(c, 1.0), 3000.0);
  EXPECT_EQ(perf::tflops_per_second(c, 0.0), 0.0);
}

TEST(LayerOps, FashionCnnGeometriesAndCosts) {
  const Model m = build_model("fashion-cnn");
  const std::vector<perf::LayerOp> ops = perf::conv_pool_batchnorm_ops(m, 32);
  ASSERT_EQ(ops.size(), 8u);  // five convolutions, three poolings
  const perf::LayerOp& first = ops[0];
  EXPECT_EQ(first.layer, "conv2d");
  EXPECT_EQ(first.family, "conv2d");
  EXPECT_TRUE(first.bias);
  const auto& g = std::get<cnnk::Conv2dGeometry>(first.geometry);
  const cnnk::Conv2dGeometry want = fashion_first_conv();
  EXPECT_EQ(describe(g), describe(want));
  EXPECT_EQ(first.cost(OpPass::Forward).flops, 157351936.0);
  EXPECT_EQ(first.passes(),
            (std::vector<OpPass>{OpPass::Forward, OpPass::BackwardData, OpPass::BackwardFilter}));
  EXPECT_EQ(ops[1].type, "MaxPooling2D");
  EXPECT_EQ(ops[1].passes(), (std::vector<OpPass>{OpPass::Forward, OpPass::Backward}));
  EXPECT_EQ(ops[1].describe(), "max n32 c64 28x28 -> 14x14, 2x2 s2x2 pad 0,0");
  // The second convolution: 64 -> 128, 3x3 "same" on 14x14.
  EXPECT_EQ(ops[2].cost(OpPass::Forward).flops, 2.0 * 32 * 128 * 14 * 14 * 64 * 9);
  // Dense layers have an op, but are not among these.
  EXPECT_TRUE(perf::layer_op(m, m.find("dense"), 32).has_value());
  EXPECT_FALSE(perf::layer_op(m, m.find("flatten"), 32).has_value());
  EXPECT_FALSE(perf::layer_op(m, 0, 32).has_value());  // the input
}

TEST(LayerOps, NonSquareStridedAndExplicitPaddingsComeBackFromTheConfiguration) {
  Model m("odd");
  m.input(Shape{3, 11, 13});
  Conv2dParams p;
  p.filters = 5;
  p.kernel_h = 3;
  p.kernel_w = 2;
  p.stride_h = 2;
  p.stride_w = 1;
  p.padding = Padding::explicit_(1, 2, 0, 1);
  m.add(layers::conv2d(p));
  Pool2dParams q;
  q.pool_h = 3;
  q.pool_w = 2;
  q.stride_h = 1;
  q.stride_w = 2;
  q.padding = Padding::same();
  q.mode = cnnk::PoolMode::Average;
  m.add(layers::pool2d(q));
  m.add(layers::batch_norm());
  m.add(layers::flatten());
  m.add(layers::dense(4, Activation::Linear, false));
  m.finish();
  const auto conv = perf::layer_op(m, 1, 7);
  ASSERT_TRUE(conv);
  EXPECT_EQ(conv->describe(), describe(conv2d_geometry(p, Shape{7, 3, 11, 13})));
  const auto pool = perf::layer_op(m, 2, 7);
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->describe(), describe(pool2d_geometry(
                                  q, Shape{7, 5, m.nodes()[1].shape[1], m.nodes()[1].shape[2]})));
  const auto bn = perf::layer_op(m, 3, 7);
  ASSERT_TRUE(bn);
  const auto& b = std::get<cnnk::BatchNormGeometry>(bn->geometry);
  EXPECT_EQ(b.n, 7);
  EXPECT_EQ(b.c, 5);
  EXPECT_EQ(b.spatial, m.nodes()[2].shape.numel() / 5);
  const auto dense = perf::layer_op(m, 5, 7);
  ASSERT_TRUE(dense);
  EXPECT_FALSE(dense->bias);
  const auto& d = std::get<cnnk::DenseGeometry>(dense->geometry);
  EXPECT_EQ(d.in, m.nodes()[4].shape[0]);
  EXPECT_EQ(d.out, 4);
}

TEST(LayerOps, EveryZooGeometryMatchesTheShapesTheModelInferred) {
  for (const ZooEntry& e : model_zoo()) {
    const Model m = build_model(e.name);
    for (const perf::LayerOp& op : perf::conv_pool_batchnorm_ops(m, 3)) {
      const Node& node = m.nodes()[static_cast<size_t>(op.node)];
      const Shape& in = m.nodes()[static_cast<size_t>(node.inputs[0])].shape;
      SCOPED_TRACE(e.name + " " + op.layer + " " + op.describe());
      EXPECT_EQ(op.batch(), 3);
      if (const auto* g = std::get_if<cnnk::Conv2dGeometry>(&op.geometry)) {
        EXPECT_EQ(Shape({g->c, g->h, g->w}), in);
        EXPECT_EQ(Shape({g->k, g->p, g->q}), node.shape);
      } else if (const auto* pg = std::get_if<cnnk::Pool2dGeometry>(&op.geometry)) {
        EXPECT_EQ(Shape({pg->c, pg->h, pg->w}), in);
        EXPECT_EQ(Shape({pg->c, pg->p, pg->q}), node.shape);
      } else {
        const auto& bg = std::get<cnnk::BatchNormGeometry>(op.geometry);
        EXPECT_EQ(int64_t{bg.c} * bg.spatial, in.numel());
      }
    }
  }
}

}  // namespace
}  // namespace cnn
