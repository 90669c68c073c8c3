// `cnn filter` and `cnn predict`, run as a user runs them: the real binary on small
// pictures written here, its output files decoded and its printed lines checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cli_test_util.h"
#include "engine/backend/cpu_backend.h"
#include "engine/graph/parameters.h"
#include "engine/graph/zoo.h"
#include "engine/io/png.h"
#include "engine/io/weights_file.h"
#include "engine/train/trainer.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using clitest::CliResult;
using clitest::contains;
using clitest::ScratchDir;
using clitest::split_lines;

class CliPictures : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(work()); }
  fs::path work() const { return scratch_.path() / "work"; }
  std::string in_work(const std::string& name) const { return (work() / name).string(); }
  CliResult run(const std::vector<std::string>& args) const {
    return clitest::run_process(CNN_BINARY, args, work(), scratch_.path());
  }
  ScratchDir scratch_;
};

void expect_success(const CliResult& r) {
  ASSERT_TRUE(r.exited && !r.timed_out) << r.describe();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

// Exit code 1 and one line "cnn: error: ..." holding every part, or a CLI11 usage error.
void expect_failure(const CliResult& r, const std::vector<std::string>& parts) {
  ASSERT_TRUE(r.exited && !r.timed_out) << "the process died: " << r.describe();
  ASSERT_NE(r.exit_code, 0) << r.describe();
  if (r.exit_code == 1) {
    const std::vector<std::string> lines = split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.describe();
    EXPECT_EQ(lines[0].rfind("cnn: error: ", 0), 0u) << r.describe();
  }
  for (const std::string& p : parts) EXPECT_TRUE(contains(r.err, p)) << p << ": " << r.describe();
  EXPECT_FALSE(contains(r.err, "internal error")) << r.describe();
}

// 0 0 0 0 0 / 0 90 90 90 0 / 0 90 180 90 0 / 0 90 90 90 0 / 0 0 0 0 0
Image8 plateau() {
  Image8 img(5, 5, 1, 0);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) img.at(x, y) = 90;
  img.at(2, 2) = 180;
  return img;
}

// ------------------------------------------------------------------------- filter

TEST_F(CliPictures, FilterBoxBlurGivesTheValuesWorkedByHand) {
  write_png(in_work("in.png"), plateau());
  const CliResult r =
      run({"filter", "--kernel", "box-blur", "in.png", "out.png", "--device", "cpu"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "box-blur")) << r.out;
  EXPECT_TRUE(contains(r.out, "clamped")) << r.out;
  const Image8 out = read_png(in_work("out.png"));
  ASSERT_EQ(out.width, 5);
  ASSERT_EQ(out.height, 5);
  ASSERT_EQ(out.channels, 1);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{10, 20, 30,  20, 10,  //
                                              20, 50, 70,  50, 20,  //
                                              30, 70, 100, 70, 30,  //
                                              20, 50, 70,  50, 20,  //
                                              10, 20, 30,  20, 10}));
  // As magnitudes (--scale abs): the largest response, the centre's 100, becomes 255.
  expect_success(run({"filter", "--kernel", "box-blur", "in.png", "abs.png", "--device", "cpu",
                      "--scale", "abs"}));
  const Image8 a = read_png(in_work("abs.png"));
  EXPECT_EQ(a.at(2, 2), 255);
  EXPECT_EQ(a.at(0, 0), 26);  // 10 * 255 / 100 = 25.5, rounded half up
}

TEST_F(CliPictures, FilterSobelXClampedOrAsMagnitude) {
  write_png(in_work("in.png"), plateau());
  // Responses: rows 90 90 0 -90 -90 / 270 360 0 -360 -270 / 360 540 0 -540 -360 / ...
  expect_success(run({"filter", "--kernel", "sobel-x", "in.png", "clamp.png", "--device", "cpu",
                      "--scale", "clamp"}));
  EXPECT_EQ(read_png(in_work("clamp.png")).pixels, (std::vector<uint8_t>{90,  90,  0, 0, 0,  //
                                                                         255, 255, 0, 0, 0,  //
                                                                         255, 255, 0, 0, 0,  //
                                                                         255, 255, 0, 0, 0,  //
                                                                         90,  90,  0, 0, 0}));
  const CliResult r =
      run({"filter", "--kernel", "sobel-x", "in.png", "abs.png", "--device", "cpu"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "|response|")) << r.out;
  const Image8 a = read_png(in_work("abs.png"));
  EXPECT_EQ(a.at(1, 2), 255);  // |540|, the largest
  EXPECT_EQ(a.at(3, 2), 255);  // |-540|
  EXPECT_EQ(a.at(2, 2), 0);
  EXPECT_EQ(a.at(0, 1), 128);  // 270 * 255 / 540 = 127.5, rounded half up
}

TEST_F(CliPictures, FilterKeepsAColourPictureAndItsAlpha) {
  Image8 rgba(6, 4, 4);
  for (size_t i = 0; i < rgba.pixels.size(); ++i) rgba.pixels[i] = static_cast<uint8_t>(i * 7);
  write_png(in_work("c.png"), rgba);
  expect_success(run({"filter", "--kernel", "identity", "c.png", "same.png"}));  // device auto
  EXPECT_EQ(read_png(in_work("same.png")).pixels, rgba.pixels);
  expect_success(run({"filter", "--kernel", "log5", "c.png", "log.png", "--device", "cpu"}));
  const Image8 out = read_png(in_work("log.png"));
  EXPECT_EQ(out.channels, 4);
  EXPECT_EQ(out.width, 6);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) EXPECT_EQ(out.at(x, y, 3), rgba.at(x, y, 3));
}

TEST_F(CliPictures, FilterListsEveryKernelWithItsTaps) {
  const CliResult r = run({"filter", "--list"});
  expect_success(r);
  for (const char* name : {"identity", "edge", "laplacian", "laplacian-diag", "sharpen", "box-blur",
                           "gaussian", "sobel-x", "sobel-y", "line-horizontal", "line-vertical",
                           "line-plus45", "line-minus45", "log5"})
    EXPECT_TRUE(contains(r.out, std::string(name) + " ")) << name << "\n" << r.out;
  EXPECT_TRUE(contains(r.out, "-1 0 1 / -2 0 2 / -1 0 1")) << r.out;  // sobel-x
  EXPECT_TRUE(contains(r.out, "(1 2 1 / 2 4 2 / 1 2 1) / 16")) << r.out;
}

TEST_F(CliPictures, FilterRefusesBadInputCleanly) {
  write_png(in_work("in.png"), plateau());
  clitest::write_text(work() / "bad.png", "this is not a picture");
  std::string cut = encode_png(plateau());
  cut.resize(cut.size() - 30);
  clitest::write_text(work() / "cut.png", cut);
  expect_failure(run({"filter", "--kernel", "blur", "in.png", "o.png"}),
                 {"unknown kernel 'blur'", "box-blur"});
  expect_failure(run({"filter", "--kernel", "sobel-x", "bad.png", "o.png"}),
                 {"bad.png", "not a PNG image"});
  expect_failure(run({"filter", "--kernel", "sobel-x", "cut.png", "o.png"}),
                 {"cut.png", "not a valid PNG"});
  expect_failure(run({"filter", "--kernel", "sobel-x", "missing.png", "o.png"}), {"missing.png"});
  expect_failure(run({"filter", "--kernel", "sobel-x", "in.png"}), {"IN.png OUT.png"});
  expect_failure(run({"filter", "in.png", "o.png"}), {"--kernel"});
  expect_failure(run({"filter", "--kernel", "sobel-x", "in.png", "o.png", "--scale", "log"}),
                 {"--scale"});
  EXPECT_FALSE(fs::exists(work() / "o.png"));
}

// ------------------------------------------------------------------------ predict

// An IDX images file of n 28x28 pictures.
std::string idx_images(const std::vector<std::vector<uint8_t>>& images, int rows = 28,
                       int cols = 28) {
  std::string out;
  const auto u32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((v >> s) & 0xff);
  };
  u32(0x00000803u);
  u32(static_cast<uint32_t>(images.size()));
  u32(static_cast<uint32_t>(rows));
  u32(static_cast<uint32_t>(cols));
  for (const auto& img : images) out.append(img.begin(), img.end());
  return out;
}

// A light object on black, different for each seed.
std::vector<uint8_t> object(int seed) {
  std::vector<uint8_t> px(784, 0);
  for (int y = 4 + seed; y < 24; ++y)
    for (int x = 6; x < 22 - seed; ++x)
      px[static_cast<size_t>(y * 28 + x)] = static_cast<uint8_t>(120 + 10 * seed + x);
  return px;
}

class CliPredict : public CliPictures {
 protected:
  void SetUp() override {
    CliPictures::SetUp();
    Model m = build_model("mnist-cnn");
    CpuBackend be;
    Parameters p(m, be);
    p.initialize(11);
    save_weights(in_work("w.safetensors"), m, p);
    clitest::write_text(work() / "three.idx", idx_images({object(0), object(1), object(2)}));
    Image8 png(28, 28, 1);
    png.pixels = object(1);
    write_png(in_work("one.png"), png);
  }
  CliResult predict(std::vector<std::string> args) const {
    args.insert(args.begin(), {"predict", "--model", "mnist-cnn", "--weights", "w.safetensors",
                               "--device", "cpu"});
    return run(args);
  }
};

// "NAME: CLASS P  (top 3: C1 P1, C2 P2, C3 P3)[  [notes]]" lines, by name.
struct Prediction {
  std::string cls, rest;
  double p = 0;
};
std::map<std::string, Prediction> predictions(const std::string& out) {
  static const std::regex line(R"(^(\S+): (.+?) ([01]\.\d{3})(.*)$)");
  std::map<std::string, Prediction> m;
  for (const std::string& l : split_lines(out)) {
    std::smatch s;
    if (l.rfind("model: ", 0) != 0 && std::regex_match(l, s, line))
      m[s[1].str()] = {s[2].str(), s[4].str(), std::stod(s[3].str())};
  }
  return m;
}

TEST_F(CliPredict, ClassifiesPngAndIdxImagesAlike) {
  const CliResult r = predict({"three.idx", "one.png"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "model: mnist-cnn")) << r.out;
  const auto p = predictions(r.out);
  ASSERT_EQ(p.size(), 4u) << r.out;
  for (const char* name : {"three.idx[0]", "three.idx[1]", "three.idx[2]", "one.png"})
    ASSERT_TRUE(p.count(name)) << name << "\n" << r.out;
  // The PNG holds the bytes of the IDX's second image: the same answer to the digit.
  EXPECT_EQ(p.at("one.png").cls, p.at("three.idx[1]").cls);
  EXPECT_EQ(p.at("one.png").p, p.at("three.idx[1]").p);
  EXPECT_EQ(p.at("one.png").rest, p.at("three.idx[1]").rest);
  // Fashion-MNIST names, the top 3 in falling order, starting with the top class.
  static const std::regex top3(
      R"(^  \(top 3: (.+) ([01]\.\d{3}), (.+) ([01]\.\d{3}), (.+) ([01]\.\d{3})\)$)");
  std::smatch m;
  const Prediction& one = p.at("one.png");
  ASSERT_TRUE(std::regex_match(one.rest, m, top3)) << one.rest;
  EXPECT_EQ(m[1].str(), one.cls);
  EXPECT_GE(std::stod(m[2].str()), std::stod(m[4].str()));
  EXPECT_GE(std::stod(m[4].str()), std::stod(m[6].str()));
  const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                          "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};
  EXPECT_NE(std::find(names.begin(), names.end(), one.cls), names.end()) << one.cls;
}

TEST_F(CliPredict, LightBackgroundsAreInvertedAndOtherSizesFitted) {
  Image8 paper(56, 40, 3, 240);  // dark object on white, colour, 56x40
  for (int y = 10; y < 30; ++y)
    for (int x = 20; x < 36; ++x)
      for (int c = 0; c < 3; ++c) paper.at(x, y, c) = 20;
  write_png(in_work("paper.png"), paper);
  CliResult r = predict({"paper.png"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "[inverted, resized from 56x40]")) << r.out;
  r = predict({"paper.png", "--invert", "no"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "[resized from 56x40]")) << r.out;
  EXPECT_FALSE(contains(r.out, "inverted")) << r.out;
  r = predict({"one.png", "--invert", "yes"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "[inverted]")) << r.out;
  // IDX images are taken as they are, unless --invert yes: then every one is inverted.
  r = predict({"three.idx", "--csv", "as-is.csv"});
  expect_success(r);
  EXPECT_FALSE(contains(r.out, "inverted")) << r.out;
  r = predict({"three.idx", "--invert", "yes", "--csv", "inverted.csv"});
  expect_success(r);
  const auto p = predictions(r.out);
  for (const char* name : {"three.idx[0]", "three.idx[1]", "three.idx[2]"}) {
    ASSERT_TRUE(p.count(name)) << name << "\n" << r.out;
    const std::string& rest = p.at(name).rest;
    EXPECT_EQ(rest.substr(rest.size() - std::min<size_t>(rest.size(), 12)), "  [inverted]")
        << name << "\n"
        << r.out;
  }
  const std::vector<std::string> as_is = split_lines(clitest::read_text(work() / "as-is.csv")),
                                 inverted =
                                     split_lines(clitest::read_text(work() / "inverted.csv"));
  ASSERT_EQ(as_is.size(), 4u);
  ASSERT_EQ(inverted.size(), 4u);
  for (size_t i = 1; i < 4; ++i) EXPECT_NE(as_is[i], inverted[i]) << i;
}

TEST_F(CliPredict, DigitNamesAndTopOne) {
  const CliResult r = predict({"one.png", "--dataset", "mnist", "--top", "1"});
  expect_success(r);
  const auto p = predictions(r.out);
  ASSERT_EQ(p.size(), 1u) << r.out;
  const std::string& cls = p.begin()->second.cls;
  EXPECT_TRUE(cls.size() == 1 && cls[0] >= '0' && cls[0] <= '9') << r.out;
  EXPECT_TRUE(p.begin()->second.rest.empty()) << r.out;
}

TEST_F(CliPredict, DrawsTheFeatureMapsOfTheFirstImage) {
  CliResult r = predict({"one.png", "three.idx", "--feature-maps", "maps.png"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "feature maps of the first Conv2D layer for one.png")) << r.out;
  const Image8 maps = read_png(in_work("maps.png"));
  EXPECT_GT(maps.width, 300);
  EXPECT_GT(maps.height, 200);
  r = predict({"one.png", "--feature-maps", "pool.png", "--layer", "max_pooling2d"});
  expect_success(r);
  EXPECT_TRUE(fs::exists(work() / "pool.png"));
  expect_failure(predict({"one.png", "--feature-maps", "d.png", "--layer", "dense"}),
                 {"not feature maps", "conv2d"});
}

// Split one CSV line whose fields hold no quotes except a quoted first field.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out;
  size_t pos = 0;
  if (!line.empty() && line[0] == '"') {
    const size_t close = line.find('"', 1);
    out.push_back(line.substr(1, close - 1));
    pos = close + 2;
  }
  std::stringstream rest(line.substr(std::min(pos, line.size())));
  for (std::string f; std::getline(rest, f, ',');) out.push_back(f);
  return out;
}

TEST_F(CliPredict, WritesEveryProbabilityToCsv) {
  fs::copy_file(work() / "one.png", work() / "a,b.png");
  const CliResult r = predict({"three.idx", "a,b.png", "--csv", "probs.csv"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "probabilities of 4 images written to probs.csv")) << r.out;
  const std::vector<std::string> lines = split_lines(clitest::read_text(work() / "probs.csv"));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "image,T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot");
  const std::vector<std::string> classes = csv_fields(lines[0]);
  const auto printed = predictions(r.out);
  std::map<std::string, std::vector<double>> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> f = csv_fields(lines[i]);
    ASSERT_EQ(f.size(), 11u) << lines[i];
    std::vector<double> p;
    for (size_t c = 1; c < f.size(); ++c) p.push_back(std::stod(f[c]));
    double sum = 0;
    for (double v : p) {
      EXPECT_GE(v, 0.0);
      sum += v;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << lines[i];
    // The printed top class is the row's largest probability, rounded to 3 places.
    const size_t top = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    ASSERT_TRUE(printed.count(f[0])) << f[0] << "\n" << r.out;
    EXPECT_EQ(printed.at(f[0]).cls, classes[top + 1]);
    EXPECT_NEAR(printed.at(f[0]).p, p[top], 0.0005 + 1e-9);
    rows[f[0]] = p;
  }
  ASSERT_TRUE(rows.count("a,b.png") && rows.count("three.idx[1]"));
  EXPECT_EQ(rows.at("a,b.png"), rows.at("three.idx[1]"));  // the same picture, same bits
  EXPECT_NE(rows.at("three.idx[0]"), rows.at("three.idx[1]"));

  // The oracle: the saved weights, loaded here, run on the images as byte / 255.
  Model m = build_model("mnist-cnn");
  CpuBackend be(/*reference_only=*/true);
  Trainer t(m, be, 1);
  load_weights(in_work("w.safetensors"), m, t.parameters());
  Tensor images = Tensor::empty_host(Shape{3, 1, 28, 28});
  for (int k = 0; k < 3; ++k) {
    const std::vector<uint8_t> px = object(k);
    for (size_t j = 0; j < px.size(); ++j) images.host()[size_t(k) * 784 + j] = px[j] / 255.0f;
  }
  const Tensor probs = t.predict(images);
  ASSERT_EQ(probs.numel(), 30);
  for (int k = 0; k < 3; ++k) {
    const std::vector<double>& row = rows.at("three.idx[" + std::to_string(k) + "]");
    for (size_t c = 0; c < 10; ++c)
      EXPECT_NEAR(row[c], probs.host()[size_t(k) * 10 + c], 1e-6)
          << "image " << k << " class " << c;
  }
  expect_failure(predict({"one.png", "--csv", "nowhere/probs.csv"}), {"--csv", "nowhere"});
}

// --batch-size splits the images into passes (the last one partial) and changes no answer.
TEST_F(CliPredict, BatchSizeSplitsThePassesAndChangesNoAnswer) {
  const CliResult whole = predict({"three.idx", "one.png", "--csv", "whole.csv"});
  expect_success(whole);
  EXPECT_TRUE(contains(whole.out, "4 images in 1 pass of at most 4\n")) << whole.out;
  const CliResult split = predict({"three.idx", "one.png", "--batch-size", "3", "--csv", "3.csv"});
  expect_success(split);
  EXPECT_TRUE(contains(split.out, "4 images in 2 passes of at most 3\n")) << split.out;
  const std::vector<std::string> a = split_lines(clitest::read_text(work() / "whole.csv")),
                                 b = split_lines(clitest::read_text(work() / "3.csv"));
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 1; i < a.size(); ++i) {
    const std::vector<std::string> fa = csv_fields(a[i]), fb = csv_fields(b[i]);
    ASSERT_EQ(fa.size(), fb.size());
    EXPECT_EQ(fa[0], fb[0]);
    for (size_t c = 1; c < fa.size(); ++c) EXPECT_NEAR(std::stod(fa[c]), std::stod(fb[c]), 1e-6);
  }
}

// --limit N takes the first N images of each IDX file (PNGs are single pictures), with
// the same answers as without it.
TEST_F(CliPredict, LimitTakesTheFirstImagesOfEachIdxFile) {
  const auto all = predictions(predict({"three.idx", "one.png"}).out);
  const CliResult r = predict({"three.idx", "one.png", "three.idx", "--limit", "2"});
  expect_success(r);
  EXPECT_TRUE(contains(r.out, "5 images in 1 pass")) << r.out;
  const auto limited = predictions(r.out);
  EXPECT_EQ(limited.size(), 3u) << r.out;  // by name: the second file's two repeat the first's
  for (const char* name : {"three.idx[0]", "three.idx[1]", "one.png"}) {
    ASSERT_TRUE(limited.count(name)) << name << "\n" << r.out;
    EXPECT_EQ(limited.at(name).p, all.at(name).p) << name;
  }
  EXPECT_FALSE(limited.count("three.idx[2]")) << r.out;
  expect_success(predict({"three.idx", "--limit", "0"}));
  EXPECT_EQ(predictions(predict({"three.idx", "--limit", "0"}).out).size(), 3u);
  expect_failure(predict({"three.idx", "--limit", "-1"}), {"--limit"});
}

TEST_F(CliPredict, RefusesBadInputsCleanly) {
  clitest::write_text(work() / "notes.txt", "hello");
  std::string cut = clitest::read_text(work() / "one.png");
  clitest::write_text(work() / "cut.png", cut.substr(0, cut.size() - 25));
  clitest::write_text(work() / "small.idx", idx_images({std::vector<uint8_t>(196, 1)}, 14, 14));
  expect_failure(predict({"cut.png"}), {"cut.png", "not a valid PNG"});
  expect_failure(predict({"notes.txt"}), {"notes.txt", "neither a PNG image nor an IDX"});
  expect_failure(predict({"small.idx"}), {"small.idx", "14x14"});
  expect_failure(predict({"missing.png"}), {"missing.png"});
  expect_failure(run({"predict", "--model", "mnist-cnn", "one.png"}), {"--weights"});
  expect_failure(run({"predict", "--model", "fashion-cnn", "--weights", "w.safetensors", "--device",
                      "cpu", "one.png"}),
                 {"w.safetensors"});
}

}  // namespace
}  // namespace cnn
