"""The engine's JSON model descriptions (models/*.json) as PyTorch modules.

One description, two engines: bench/torch_bench.py trains exactly the layer list that
`cnn train --model NAME` trains, with the engine's (Keras's) conventions carried over:
  - Conv2D / pooling "same": out = ceil(in / s), the total padding split with the smaller
    half first (PyTorch's symmetric padding is used where the halves agree, an explicit
    pad where they do not); max pooling pads with -inf, average pooling counts only the
    real inputs;
  - BatchNormalization: momentum 0.99 in Keras's sense (PyTorch's momentum is 1 - it),
    epsilon 1e-3, on the channel axis of a feature map or the features of a vector;
  - glorot_uniform kernels and zero biases; gamma 1, beta 0;
  - a softmax on the last layer is left out: the cross-entropy takes logits.
Param counts follow Keras's summary: batch norm's moving mean and variance count.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What `cnn summary` prints for the zoo (the seed models' counts are in DESIGN.md): the
# PyTorch build must agree, or the two engines are not training the same model.
PARAMS = {
    "fashion-cnn": 1_413_834, "mnist-cnn": 30_762, "mnist-functional": 104_202,
    "mnist-nopool": 712_202, "lenet5": 61_706, "vgg-small": 469_098,
    "resnet-small": 78_426, "inception-small": 34_442,
}

ACTIVATIONS = {"linear": None, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
               "softmax": lambda: nn.Softmax(dim=1)}


def model_path(name_or_path):
    """A zoo name (models/NAME.json of this repository) or a path to a description."""
    if name_or_path.endswith(".json") or os.sep in name_or_path:
        return name_or_path
    return os.path.join(REPO, "models", name_or_path + ".json")


def pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def same_padding(size, k, s, d=1):
    """Keras's "same": (before, after) padding of one axis of length `size`."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2, out


def valid_out(size, k, s, d=1):
    return (size - (k - 1) * d - 1) // s + 1


class PaddedConv(nn.Module):
    """Conv2d behind an explicit zero pad: Keras's asymmetric "same" padding."""

    def __init__(self, pad, conv):
        super().__init__()
        self.pad, self.conv = pad, conv  # pad: (left, right, top, bottom), F.pad's order

    def forward(self, x):
        return self.conv(F.pad(x, self.pad))


class SamePool(nn.Module):
    """Pooling with Keras's "same" padding: max pads with -inf; average divides each
    window by the count of real inputs in it."""

    def __init__(self, kind, k, s, pad):
        super().__init__()
        self.kind, self.k, self.s, self.pad = kind, k, s, pad

    def forward(self, x):
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, self.pad, value=-math.inf), self.k, self.s)
        total = F.avg_pool2d(F.pad(x, self.pad), self.k, self.s)
        ones = torch.ones_like(x[:1, :1])
        real = F.avg_pool2d(F.pad(ones, self.pad), self.k, self.s)
        return total / real


class GraphModel(nn.Module):
    """The layer list in order; a layer reads the one before it or its named inputs."""

    def __init__(self, name, steps, output, modules):
        super().__init__()
        self.name, self.steps, self.output = name, steps, output
        self.layers = nn.ModuleDict(modules)

    def forward(self, x):
        values, last = {"input": x}, x
        for name, kind, inputs in self.steps:
            args = [values[i] for i in inputs] if inputs else [last]
            if kind == "Add":
                out = args[0]
                for a in args[1:]:
                    out = out + a
            elif kind == "Concatenate":
                out = torch.cat(args, dim=1)
            else:
                out = self.layers[name](args[0])
            values[name] = last = out
        return values[self.output]


def _activation(name, layer_name, drop_softmax):
    if name == "softmax" and drop_softmax:
        return None
    if name not in ACTIVATIONS:
        raise ValueError(f"{layer_name}: activation {name!r} has no PyTorch counterpart here")
    make = ACTIVATIONS[name]
    return make() if make else None


def _seq(*mods):
    mods = [m for m in mods if m is not None]
    return mods[0] if len(mods) == 1 else nn.Sequential(*mods)


def build(doc):
    """(GraphModel, Keras parameter count) of a parsed model description."""
    name = doc.get("name", "model")
    shapes = {"input": tuple(doc["input"])}  # (C, H, W) or (features,)
    layers = doc["layers"]
    output = doc.get("output", layers[-1]["name"])
    steps, modules, last = [], {}, "input"
    for spec in layers:
        kind, lname = spec["type"], spec["name"]
        ins = spec.get("inputs")
        ins = [ins] if isinstance(ins, str) else ins
        src = shapes[ins[0]] if ins else shapes[last]
        drop_softmax = lname == output
        if kind == "Conv2D":
            c, h, w = src
            (kh, kw), (sh, sw) = pair(spec["kernel_size"]), pair(spec.get("strides", 1))
            dh, dw = pair(spec.get("dilation_rate", 1))
            bias = spec.get("use_bias", True)
            if spec.get("padding", "valid") == "same":
                top, bottom, oh = same_padding(h, kh, sh, dh)
                left, right, ow = same_padding(w, kw, sw, dw)
            else:
                top = bottom = left = right = 0
                oh, ow = valid_out(h, kh, sh, dh), valid_out(w, kw, sw, dw)
            symmetric = top == bottom and left == right
            conv = nn.Conv2d(c, spec["filters"], (kh, kw), (sh, sw),
                             padding=(top, left) if symmetric else 0, dilation=(dh, dw),
                             bias=bias)
            if not symmetric:
                conv = PaddedConv((left, right, top, bottom), conv)
            modules[lname] = _seq(conv, _activation(spec.get("activation", "linear"), lname,
                                                    drop_softmax))
            shapes[lname] = (spec["filters"], oh, ow)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            c, h, w = src
            (kh, kw) = pair(spec.get("pool_size", 2))
            (sh, sw) = pair(spec.get("strides") or (kh, kw))
            pool_kind = "max" if kind == "MaxPooling2D" else "avg"
            if spec.get("padding", "valid") == "same":
                top, bottom, oh = same_padding(h, kh, sh)
                left, right, ow = same_padding(w, kw, sw)
                modules[lname] = SamePool(pool_kind, (kh, kw), (sh, sw), (left, right, top, bottom))
            else:
                oh, ow = valid_out(h, kh, sh), valid_out(w, kw, sw)
                cls = nn.MaxPool2d if pool_kind == "max" else nn.AvgPool2d
                modules[lname] = cls((kh, kw), (sh, sw))
            shapes[lname] = (c, oh, ow)
        elif kind == "Dense":
            if len(src) != 1:
                raise ValueError(f"{lname}: Dense takes a vector; put a Flatten before it")
            linear = nn.Linear(src[0], spec["units"], bias=spec.get("use_bias", True))
            modules[lname] = _seq(linear, _activation(spec.get("activation", "linear"), lname,
                                                      drop_softmax))
            shapes[lname] = (spec["units"],)
        elif kind == "Flatten":
            modules[lname] = nn.Flatten()
            shapes[lname] = (math.prod(src),)
        elif kind in ("Dropout", "SpatialDropout2D"):
            cls = nn.Dropout if kind == "Dropout" else nn.Dropout2d
            modules[lname] = cls(spec["rate"])
            shapes[lname] = src
        elif kind == "BatchNormalization":
            cls = nn.BatchNorm2d if len(src) == 3 else nn.BatchNorm1d
            modules[lname] = cls(src[0], eps=spec.get("epsilon", 1e-3),
                                 momentum=1.0 - spec.get("momentum", 0.99))
            shapes[lname] = src
        elif kind == "Activation":
            modules[lname] = _activation(spec["activation"], lname, drop_softmax) or nn.Identity()
            shapes[lname] = src
        elif kind == "Add":
            shapes[lname] = shapes[ins[0]]
        elif kind == "Concatenate":
            first = shapes[ins[0]]
            shapes[lname] = (sum(shapes[i][0] for i in ins),) + tuple(first[1:])
        else:
            raise ValueError(f"{lname}: layer type {kind!r} has no PyTorch counterpart here")
        steps.append((lname, kind, ins))
        last = lname
    model = GraphModel(name, steps, output, modules)
    keras_init(model)
    return model, keras_param_count(model)


def keras_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            # glorot_uniform: fans are in*k*k and out*k*k for a conv, as xavier counts them.
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def keras_param_count(model):
    """Parameters plus batch norm's moving statistics, as Keras's summary counts."""
    stats = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return sum(p.numel() for p in model.parameters()) + stats


def build_model(name_or_path):
    """The model of a zoo name or description file, Keras-initialised; a zoo model's
    parameter count is checked against the engine's."""
    path = model_path(name_or_path)
    with open(path) as f:
        doc = json.load(f)
    model, params = build(doc)
    expected = PARAMS.get(doc.get("name"))
    if expected is not None and params != expected:
        raise AssertionError(f"{path}: {params} parameters in PyTorch, the engine has {expected}")
    return model


def _find(module, cls):
    """The first submodule of a type inside one layer's module (itself included)."""
    for m in module.modules():
        if isinstance(m, cls):
            return m
    return None


def load_engine_weights(model, tensors):
    """Copy the engine's weights (a safetensors file's {"layer/kind": tensor}) into the
    model: Conv2D and Dense kernel and bias, BatchNormalization gamma, beta, moving_mean
    and moving_variance. Returns the names it used; a name it has no place for raises."""
    used = []
    for key, value in tensors.items():
        layer, _, kind = key.partition("/")
        if layer not in model.layers:
            raise KeyError(f"{key}: no layer {layer!r} in {model.name}")
        module = model.layers[layer]
        bn = _find(module, nn.modules.batchnorm._BatchNorm)
        weighted = _find(module, (nn.Conv2d, nn.Linear))
        target = {"kernel": (weighted, "weight"), "bias": (weighted, "bias"),
                  "gamma": (bn, "weight"), "beta": (bn, "bias"),
                  "moving_mean": (bn, "running_mean"),
                  "moving_variance": (bn, "running_var")}.get(kind, (None, None))
        if target[0] is None:
            raise KeyError(f"{key}: nothing in layer {layer!r} takes a {kind!r}")
        dest = getattr(*target)
        if tuple(dest.shape) != tuple(value.shape):
            raise ValueError(f"{key}: shape {tuple(value.shape)}, PyTorch has {tuple(dest.shape)}")
        with torch.no_grad():
            dest.copy_(value)
        used.append(key)
    return used


def read_safetensors(path):
    """{name: float32 tensor} of a safetensors file (F32 only, as the engine writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {meta['dtype']}, not F32")
        begin, end = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
        out[name] = t.reshape(meta["shape"])
    return out
