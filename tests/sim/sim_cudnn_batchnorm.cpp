// The simulated cuDNN's batch normalization (the library itself: sim_cudnn.cpp): the
// training and inference forward passes and the backward pass, with statistics per channel
// (CUDNN_BATCHNORM_SPATIAL), the mode the engine's batch-norm layer uses.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "cudnn.h"
#include "sim_cudnn_internal.h"

using cnnk_sim::cudnn::alike;
using cnnk_sim::cudnn::bad;
using cnnk_sim::cudnn::Blend;
using cnnk_sim::cudnn::blend_of;
using cnnk_sim::cudnn::described;
using cnnk_sim::cudnn::Dims4;
using cnnk_sim::cudnn::floats;
using cnnk_sim::cudnn::for_channel;
using cnnk_sim::cudnn::host_scalars;
using cnnk_sim::cudnn::on_device;
using cnnk_sim::cudnn::per_channel;
using cnnk_sim::cudnn::Problem;
using cnnk_sim::cudnn::refuse;
using cnnk_sim::cudnn::Regions;
using cnnk_sim::cudnn::same_dims;
using cnnk_sim::cudnn::submit;
using cnnk_sim::cudnn::unsupported;
using cnnk_sim::cudnn::usable;

namespace {

// A channel's mean and its biased variance over the batch.
struct Moments {
  double mean, var;
};
Moments moments(const Dims4& d, const float* x, int c) {
  const double m = static_cast<double>(d.n) * d.h * d.w;
  double sum = 0.0, sq = 0.0;
  for_channel(d, c, [&](int64_t i) { sum += static_cast<double>(x[i]); });
  const double mean = sum / m;
  for_channel(d, c, [&](int64_t i) {
    const double e = static_cast<double>(x[i]) - mean;
    sq += e * e;
  });
  return Moments{mean, sq / m};
}

// Only the spatial mode (statistics per channel over n, h, w) is modelled.
Problem bn_mode(cudnnBatchNormMode_t mode) {
  if (mode == CUDNN_BATCHNORM_SPATIAL) return {};
  if (mode == CUDNN_BATCHNORM_PER_ACTIVATION || mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT)
    return unsupported("batch-norm mode " + std::to_string(static_cast<int>(mode)) +
                       " (only CUDNN_BATCHNORM_SPATIAL)");
  return bad("mode is not a cudnnBatchNormMode_t");
}

Problem bn_epsilon(double epsilon) {
  if (epsilon >= CUDNN_BN_MIN_EPSILON) return {};
  return bad("epsilon " + std::to_string(epsilon) + " is below CUDNN_BN_MIN_EPSILON");
}

// Optional outputs that cuDNN takes in pairs: both null or both given.
Problem pair_given(const char* names, const void* a, const void* b) {
  if (!a == !b) return {};
  return bad(std::string(names) + ": one is null and the other is not; give both or neither");
}

// What every batch-norm call checks first: the handle, the mode, and the descriptors
// (x-like tensors all alike, parameters 1xCx1x1).
Problem bn_call(cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnTensorDescriptor_t x,
                cudnnTensorDescriptor_t y, const char* y_name, cudnnTensorDescriptor_t param,
                const char* param_name) {
  if (Problem p = usable(handle)) return p;
  if (Problem p = bn_mode(mode)) return p;
  if (Problem p = described("xDesc", x)) return p;
  if (Problem p = described(y_name, y)) return p;
  if (Problem p = described(param_name, param)) return p;
  if (Problem p = same_dims("xDesc", x->dims, y_name, y->dims)) return p;
  return per_channel(param_name, param->dims, x->dims.c);
}

}  // namespace

cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc,
    void* y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
    const void* bnBias, double exponentialAverageFactor, void* resultRunningMean,
    void* resultRunningVariance, double epsilon, void* resultSaveMean,
    void* resultSaveInvVariance) {
  const char* call = "cudnnBatchNormalizationForwardTraining";
  if (Problem p = bn_call(handle, mode, xDesc, yDesc, "yDesc", bnScaleBiasMeanVarDesc,
                          "bnScaleBiasMeanVarDesc"))
    return refuse(call, p);
  const Dims4 d = xDesc->dims;
  const size_t param_bytes = static_cast<size_t>(d.c) * sizeof(float);
  // The running variance takes the unbiased batch variance, undefined for one value.
  if (d.count() / d.c < 2)
    return refuse(call, unsupported("training statistics over fewer than 2 values per channel"));
  if (Problem p = bn_epsilon(epsilon)) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  if (Problem p = pair_given("resultRunningMean, resultRunningVariance", resultRunningMean,
                             resultRunningVariance))
    return refuse(call, p);
  if (Problem p = pair_given("resultSaveMean, resultSaveInvVariance", resultSaveMean,
                             resultSaveInvVariance))
    return refuse(call, p);
  Regions regions{{"x", x, d.bytes()},
                  {"y", y, d.bytes()},
                  {"bnScale", bnScale, param_bytes},
                  {"bnBias", bnBias, param_bytes}};
  if (resultRunningMean) {
    regions.push_back({"resultRunningMean", resultRunningMean, param_bytes});
    regions.push_back({"resultRunningVariance", resultRunningVariance, param_bytes});
  }
  if (resultSaveMean) {
    regions.push_back({"resultSaveMean", resultSaveMean, param_bytes});
    regions.push_back({"resultSaveInvVariance", resultSaveInvVariance, param_bytes});
  }
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *xf = floats(x), *scale = floats(bnScale), *bias = floats(bnBias);
  float *yf = floats(y), *run_mean = floats(resultRunningMean),
        *run_var = floats(resultRunningVariance), *save_mean = floats(resultSaveMean),
        *save_invvar = floats(resultSaveInvVariance);
  const Blend blend = blend_of(alpha, beta);
  const double factor = exponentialAverageFactor;
  return submit(handle, call, std::move(regions), [=] {
    const double m = static_cast<double>(d.count() / d.c);
    for (int c = 0; c < d.c; ++c) {
      const Moments mo = moments(d, xf, c);
      const double invstd = 1.0 / std::sqrt(mo.var + epsilon);
      const double g = static_cast<double>(scale[c]), b = static_cast<double>(bias[c]);
      for_channel(d, c, [&](int64_t i) {
        blend.store(yf + i, g * (static_cast<double>(xf[i]) - mo.mean) * invstd + b);
      });
      // running = (1 - factor) * running + factor * batch, the variance unbiased.
      if (run_mean) {
        run_mean[c] = static_cast<float>((1.0 - factor) * static_cast<double>(run_mean[c]) +
                                         factor * mo.mean);
        run_var[c] = static_cast<float>((1.0 - factor) * static_cast<double>(run_var[c]) +
                                        factor * mo.var * m / (m - 1.0));
      }
      if (save_mean) {
        save_mean[c] = static_cast<float>(mo.mean);
        save_invvar[c] = static_cast<float>(invstd);
      }
    }
  });
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc,
    void* y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
    const void* bnBias, const void* estimatedMean, const void* estimatedVariance, double epsilon) {
  const char* call = "cudnnBatchNormalizationForwardInference";
  if (Problem p = bn_call(handle, mode, xDesc, yDesc, "yDesc", bnScaleBiasMeanVarDesc,
                          "bnScaleBiasMeanVarDesc"))
    return refuse(call, p);
  const Dims4 d = xDesc->dims;
  const size_t param_bytes = static_cast<size_t>(d.c) * sizeof(float);
  if (Problem p = bn_epsilon(epsilon)) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"x", x, d.bytes()},
                  {"y", y, d.bytes()},
                  {"bnScale", bnScale, param_bytes},
                  {"bnBias", bnBias, param_bytes},
                  {"estimatedMean", estimatedMean, param_bytes},
                  {"estimatedVariance", estimatedVariance, param_bytes}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *xf = floats(x), *scale = floats(bnScale), *bias = floats(bnBias),
              *mean = floats(estimatedMean), *var = floats(estimatedVariance);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [=] {
    for (int c = 0; c < d.c; ++c) {
      const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + epsilon);
      const double mu = static_cast<double>(mean[c]);
      const double g = static_cast<double>(scale[c]), b = static_cast<double>(bias[c]);
      for_channel(d, c, [&](int64_t i) {
        blend.store(yf + i, g * (static_cast<double>(xf[i]) - mu) * invstd + b);
      });
    }
  });
}

cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff,
    const void* betaDataDiff, const void* alphaParamDiff, const void* betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const cudnnTensorDescriptor_t bnScaleBiasDiffDesc, const void* bnScale, void* resultBnScaleDiff,
    void* resultBnBiasDiff, double epsilon, const void* savedMean, const void* savedInvVariance) {
  const char* call = "cudnnBatchNormalizationBackward";
  if (Problem p = bn_call(handle, mode, xDesc, dyDesc, "dyDesc", bnScaleBiasDiffDesc,
                          "bnScaleBiasDiffDesc"))
    return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"dxDesc", dxDesc}})) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  const size_t param_bytes = static_cast<size_t>(d.c) * sizeof(float);
  if (Problem p = bn_epsilon(epsilon)) return refuse(call, p);
  if (Problem p = host_scalars(alphaDataDiff, betaDataDiff)) return refuse(call, p);
  if (Problem p = host_scalars(alphaParamDiff, betaParamDiff)) return refuse(call, p);
  if (Problem p = pair_given("savedMean, savedInvVariance", savedMean, savedInvVariance))
    return refuse(call, p);
  Regions regions{{"x", x, d.bytes()},
                  {"dy", dy, d.bytes()},
                  {"dx", dx, d.bytes()},
                  {"bnScale", bnScale, param_bytes},
                  {"resultBnScaleDiff", resultBnScaleDiff, param_bytes},
                  {"resultBnBiasDiff", resultBnBiasDiff, param_bytes}};
  if (savedMean) {
    regions.push_back({"savedMean", savedMean, param_bytes});
    regions.push_back({"savedInvVariance", savedInvVariance, param_bytes});
  }
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *xf = floats(x), *dyf = floats(dy), *scale = floats(bnScale),
              *saved_mean = floats(savedMean), *saved_invvar = floats(savedInvVariance);
  float *dxf = floats(dx), *dscale = floats(resultBnScaleDiff), *dbias = floats(resultBnBiasDiff);
  const Blend data = blend_of(alphaDataDiff, betaDataDiff);
  const Blend param = blend_of(alphaParamDiff, betaParamDiff);
  // With xhat = (x - mean) * invstd over the m values of a channel: dbias = sum dy,
  // dscale = sum dy * xhat, dx = scale * invstd / m * (m * dy - dbias - xhat * dscale).
  // Without saved statistics they are recomputed from x with this call's epsilon.
  return submit(handle, call, std::move(regions), [=] {
    const double m = static_cast<double>(d.count() / d.c);
    for (int c = 0; c < d.c; ++c) {
      double mean = 0.0, invstd = 0.0;
      if (saved_mean) {
        mean = static_cast<double>(saved_mean[c]);
        invstd = static_cast<double>(saved_invvar[c]);
      } else {
        const Moments mo = moments(d, xf, c);
        mean = mo.mean;
        invstd = 1.0 / std::sqrt(mo.var + epsilon);
      }
      double sum_dy = 0.0, sum_dy_xhat = 0.0;
      for_channel(d, c, [&](int64_t i) {
        sum_dy += static_cast<double>(dyf[i]);
        sum_dy_xhat += static_cast<double>(dyf[i]) * (static_cast<double>(xf[i]) - mean) * invstd;
      });
      const double k = static_cast<double>(scale[c]) * invstd / m;
      for_channel(d, c, [&](int64_t i) {
        const double xhat = (static_cast<double>(xf[i]) - mean) * invstd;
        data.store(dxf + i, k * (m * static_cast<double>(dyf[i]) - sum_dy - xhat * sum_dy_xhat));
      });
      param.store(dscale + c, sum_dy_xhat);
      param.store(dbias + c, sum_dy);
    }
  });
}
