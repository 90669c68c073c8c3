// The model zoo beside the seed models: LeNet-5, a VGG-style stack, a small ResNet and a
// small Inception network. Parameter counts are pinned per layer, worked out by hand in
// the comments (conv: filters * (in_channels * kh * kw) + filters for the bias; dense:
// units * inputs + units; batch norm: 4 * channels, of which the moving mean and
// variance, 2 * channels, are non-trainable). Each model trains on a slice of
// Fashion-MNIST, and each ships as a model file under models/ that builds the same model.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engine/backend/cpu_backend.h"
#include "engine/graph/model_file.h"
#include "engine/graph/zoo.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

using testing::layer_params;

TEST(ZooModels, TheZooListsSeedAndClassicModels) {
  std::vector<std::string> names;
  for (const ZooEntry& e : model_zoo()) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"fashion-cnn", "mnist-cnn", "mnist-functional",
                                             "mnist-nopool", "lenet5", "vgg-small", "resnet-small",
                                             "inception-small"}));
  for (const ZooEntry& e : model_zoo()) {
    const Model m = build_model(e.name);
    EXPECT_EQ(m.count_params(), e.params) << e.name;
    EXPECT_EQ(m.name(), e.name);
    EXPECT_TRUE(m.softmax_folded()) << e.name;
    EXPECT_EQ(m.output_node().shape, (Shape{10})) << e.name;
  }
}

TEST(ZooModels, LeNet5) {
  const Model m = build_model("lenet5");
  EXPECT_EQ(layer_params(m), (std::vector<int64_t>{
                                 156,    // conv 6@5x5 same on 1 channel: 6*25 + 6 -> 28x28x6
                                 0,      // average pooling -> 14x14x6
                                 2416,   // conv 16@5x5 valid on 6: 16*150 + 16 -> 10x10x16
                                 0,      // average pooling -> 5x5x16
                                 0,      // flatten: 400
                                 48120,  // dense 120: 120*400 + 120
                                 10164,  // dense 84: 84*120 + 84
                                 850,    // dense 10: 10*84 + 10
                             }));
  EXPECT_EQ(m.count_params(), 61706);  // the figure Keras prints for this LeNet-5
  EXPECT_EQ(m.count_params(false), 0);
  EXPECT_EQ(m.nodes()[3].shape, (Shape{16, 10, 10}));
  EXPECT_EQ(m.nodes()[5].shape, (Shape{400}));
  const std::string s = summary(m);
  EXPECT_NE(s.find("(None, 28, 28, 6)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 5, 5, 16)"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 61,706"), std::string::npos) << s;
}

TEST(ZooModels, VggSmall) {
  const Model m = build_model("vgg-small");
  EXPECT_EQ(layer_params(m), (std::vector<int64_t>{
                                 320,     // conv 32@3x3 on 1: 32*9 + 32
                                 128,     // batch norm, 32 channels
                                 9248,    // conv 32@3x3 on 32: 32*288 + 32
                                 128,     // batch norm
                                 0, 0,    // max pooling -> 14x14x32, dropout
                                 18496,   // conv 64@3x3 on 32: 64*288 + 64
                                 256,     // batch norm, 64 channels
                                 36928,   // conv 64@3x3 on 64: 64*576 + 64
                                 256,     // batch norm
                                 0, 0,    // max pooling -> 7x7x64, dropout
                                 0,       // flatten: 3136
                                 401536,  // dense 128: 128*3136 + 128
                                 512,     // batch norm, 128 features
                                 0,       // dropout
                                 1290,    // dense 10: 10*128 + 10
                             }));
  // Moving statistics: 2 * (32 + 32 + 64 + 64 + 128) = 640.
  EXPECT_EQ(m.count_params(false), 640);
  EXPECT_EQ(m.count_params(true), 469098 - 640);
  const std::string s = summary(m);
  EXPECT_NE(s.find("Total params: 469,098"), std::string::npos) << s;
  EXPECT_NE(s.find("Trainable params: 468,458"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 640"), std::string::npos) << s;
  // Long names keep a space before the next column.
  EXPECT_NE(s.find("batch_normalization_4 (BatchNormalization) (None, 128)"), std::string::npos)
      << s;
}

TEST(ZooModels, ResNetSmall) {
  const Model m = build_model("resnet-small");
  EXPECT_EQ(layer_params(m),
            (std::vector<int64_t>{
                144, 64, 0,  // stem: conv 16@3x3 on 1 without bias (144), BN 16 (64), ReLU
                // block1, 16 filters at 28x28, identity shortcut:
                2304, 64, 0,  // conv 16@3x3 on 16: 16*144, BN, ReLU
                2304, 64,     // conv, BN
                0, 0,         // add, ReLU
                // block2, 32 filters, stride 2 -> 14x14, projection shortcut:
                4608, 128, 0,  // conv 32@3x3 on 16: 32*144, BN 32, ReLU
                9216, 128,     // conv 32@3x3 on 32: 32*288, BN
                512, 128,      // shortcut conv 32@1x1 stride 2 on 16: 32*16, BN
                0, 0,          // add, ReLU
                // block3, 64 filters, stride 2 -> 7x7, projection shortcut:
                18432, 256, 0,  // conv 64@3x3 on 32: 64*288, BN 64, ReLU
                36864, 256,     // conv 64@3x3 on 64: 64*576, BN
                2048, 256,      // shortcut conv 64@1x1 on 32: 64*32, BN
                0, 0,           // add, ReLU
                0, 0,           // 7x7 average pooling -> 1x1x64, flatten: 64
                650,            // dense 10: 10*64 + 10
            }));
  // Convolutions 76,432 + batch norm 1,344 + dense 650 = 78,426; the moving statistics
  // of 16 + 16 + 16 + 32 * 3 + 64 * 3 = 336 channels, 672 values, are non-trainable.
  EXPECT_EQ(m.count_params(), 78426);
  EXPECT_EQ(m.count_params(false), 672);
  EXPECT_FALSE(m.is_chain());
  const auto& nodes = m.nodes();
  const int add2 = m.find("block2_add"), pool = m.find("global_pool");
  ASSERT_GT(add2, 0);
  EXPECT_EQ(nodes[static_cast<size_t>(add2)].shape, (Shape{32, 14, 14}));
  EXPECT_EQ(nodes[static_cast<size_t>(pool)].shape, (Shape{64, 1, 1}));
  // The identity shortcut of block1 reads the stem; block2's projection reads block1.
  const Node& add1 = nodes[static_cast<size_t>(m.find("block1_add"))];
  EXPECT_EQ(add1.inputs[1], m.find("stem_relu"));
  const Node& proj = nodes[static_cast<size_t>(m.find("block2_proj"))];
  EXPECT_EQ(proj.inputs[0], m.find("block1_out"));
  const std::string s = summary(m);
  EXPECT_NE(s.find("block2_bn2, block2_proj_bn"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 672"), std::string::npos) << s;
}

TEST(ZooModels, InceptionSmall) {
  const Model m = build_model("inception-small");
  EXPECT_EQ(layer_params(m), (std::vector<int64_t>{
                                 320, 0,  // stem conv 32@3x3 on 1: 32*9 + 32; pool -> 14x14
                                 528,     // 1x1 branch: 16@1x1 on 32: 16*32 + 16
                                 528,     // 3x3 branch reduce: 16@1x1 on 32
                                 3480,    // 3x3 branch: 24@3x3 on 16: 24*144 + 24
                                 264,     // 5x5 branch reduce: 8@1x1 on 32: 8*32 + 8
                                 1608,    // 5x5 branch: 8@5x5 on 8: 8*200 + 8
                                 0,       // pool branch: 3x3 max pooling, stride 1, same
                                 264,     // pool projection: 8@1x1 on 32
                                 0,       // concatenate: 16 + 24 + 8 + 8 = 56 channels
                                 0, 0,    // max pooling -> 7x7x56, flatten: 2744
                                 27450,   // dense 10: 10*2744 + 10
                             }));
  EXPECT_EQ(m.count_params(), 34442);
  EXPECT_EQ(m.nodes()[static_cast<size_t>(m.find("mixed"))].shape, (Shape{56, 14, 14}));
  const std::string s = summary(m);
  EXPECT_NE(s.find("mixed_1x1, mixed_3x3, mixed_5x5, mixed_pool_proj"), std::string::npos) << s;
}

// Every model of the zoo ships as models/<name>.json, and the file builds the same
// model: the same summary, the same description, the same parameters in the same order.
TEST(ZooFiles, EachModelFileBuildsTheBuiltInModel) {
  const fs::path dir = fs::path(CNN_SOURCE_DIR) / "models";
  std::set<std::string> expected;
  for (const ZooEntry& e : model_zoo()) {
    SCOPED_TRACE(e.name);
    expected.insert(e.name + ".json");
    const fs::path file = dir / (e.name + ".json");
    ASSERT_TRUE(fs::is_regular_file(file)) << file;
    const Model built = build_model(e.name);
    const Model loaded = load_model_file(file.string());
    EXPECT_EQ(summary(loaded), summary(built));
    EXPECT_EQ(model_to_json(loaded), model_to_json(built));
    EXPECT_EQ(loaded.count_params(true), built.count_params(true));
    EXPECT_EQ(loaded.count_params(false), built.count_params(false));
    EXPECT_EQ(loaded.softmax_folded(), built.softmax_folded());
    // --model with the path builds it too.
    EXPECT_EQ(summary(build_model(file.string())), summary(built));
  }
  std::set<std::string> present;
  for (const auto& f : fs::directory_iterator(dir)) present.insert(f.path().filename().string());
  EXPECT_EQ(present, expected) << "models/ holds exactly the zoo";
}

// A few dozen steps on a small slice of Fashion-MNIST lower the training loss: each
// model's forward and backward work end to end on real data. Batch norm's running
// statistics barely move in so few steps, so the training loss (as Keras's progress bar
// shows it) is what is compared: the first epoch's against the last.
class ZooTraining : public ::testing::TestWithParam<const char*> {};

TEST_P(ZooTraining, AFewStepsOnAFashionMnistSliceLowerTheLoss) {
  const std::string dir = testing::real_fashion_mnist_dir();
  if (dir.empty()) GTEST_SKIP() << "Fashion-MNIST not found under " << CNN_TEST_SHARED_DATA;
  static const DatasetSplits data = load_dataset_dir(dir);
  const Dataset slice = take_first(data.train, 320);
  CpuBackend be;
  Model m = build_model(GetParam());
  Trainer t(m, be, 3);
  FitOptions o;
  o.epochs = 3;  // 3 x 10 steps of 32
  o.batch_size = 32;
  const History h = t.fit(slice, o);
  ASSERT_EQ(h.epochs.size(), 3u);
  EXPECT_LT(h.epochs.back().loss, 0.8 * h.epochs.front().loss) << GetParam();
  EXPECT_GT(h.epochs.back().accuracy, 0.4) << GetParam();  // chance is 0.1
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooTraining,
                         ::testing::Values("lenet5", "vgg-small", "resnet-small",
                                           "inception-small"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           std::string name = param.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace cnn
