"""Tests for ijr.models: parameter counts of paper 000 (App. E.2) and the references, forward
shapes, the registry's errors, fc2 (paper 004, Sec. 4.1), initialisation, torch.func use and
the Hydra model configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.func import functional_call, jvp, vjp

from ijr.models import build, count_parameters, describe, names
from ijr.models.resnet_cifar import SubsampleZeroPadShortcut

CIFAR = (3, 32, 32)
MNIST = (1, 28, 28)
DIGITS = (1, 8, 8)
CONF_MODEL_DIR = Path(__file__).resolve().parents[1] / "conf" / "model"

EXPECTED_NAMES = [
    "cnn6",
    "coord_mlp",
    "fc2",
    "fcn3",
    "preact_resnet18",
    "resnet18",
    "resnet18_bn",
    "resnet20",
    "simplecnn",
    "vgg11",
    "vgg11_bn",
    "wrn28_10",
    "wrn28_2",
    "wrn34_10",
]

# (name, num_classes, in_shape, parameter count)
PAPER_000_COUNTS = [  # paper 000, Appendix E.2
    ("cnn6", 10, CIFAR, 511_926),
    ("simplecnn", 10, CIFAR, 361_706),
    ("vgg11", 10, CIFAR, 9_750_922),
    ("vgg11", 100, CIFAR, 9_797_092),
    ("resnet20", 10, CIFAR, 268_346),
    ("fcn3", 10, CIFAR, 656_810),
    ("fcn3", 10, MNIST, 199_210),
    ("wrn28_2", 10, CIFAR, 1_467_610),
    ("wrn28_2", 100, CIFAR, 1_479_220),
    ("wrn28_10", 10, CIFAR, 36_479_194),
    ("wrn28_10", 100, CIFAR, 36_536_884),
]
REFERENCE_COUNTS = [  # no count in the papers: the reference implementations' counts
    ("vgg11_bn", 10, CIFAR, 9_756_426),  # chengyangfu vgg11_bn without dropout
    ("resnet18_bn", 10, CIFAR, 11_173_962),  # kuangliu ResNet18
    ("resnet18", 10, CIFAR, 11_173_962 - 9_600),  # the same minus its 4,800 BN channels x 2
    ("preact_resnet18", 10, CIFAR, 11_172_170),  # Rice et al. / Pang et al. PreActResNet18
    ("wrn34_10", 10, CIFAR, 46_160_474),  # TRADES WideResNet(34, 10) without sub_block1
    # fc2: d*m + m*C (+ m + C with bias)
    ("fc2", 1, CIFAR, 3072 * 1000 + 1000),
    ("fcn3", 10, DIGITS, 64 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10),
]


@pytest.mark.parametrize(
    ("name", "num_classes", "in_shape", "expected"), PAPER_000_COUNTS + REFERENCE_COUNTS
)
def test_parameter_count(name, num_classes, in_shape, expected):
    # the meta device allocates nothing, so even WRN-28-10 is counted in milliseconds
    with torch.device("meta"):
        model = build(name, num_classes, in_shape)
    assert count_parameters(model) == expected


def test_fc2_count_with_bias_and_classes():
    model = build("fc2", 3, (5,), width=7, bias=True)
    assert count_parameters(model) == 5 * 7 + 7 + 7 * 3 + 3


def test_names_lists_every_model_sorted():
    assert names() == EXPECTED_NAMES
    assert all(describe(name) for name in names())


def cifar_model(name: str) -> torch.nn.Module:
    """The model built for CIFAR-10 (one output for fc2) from seed 0."""
    torch.manual_seed(0)
    return build(name, 1 if name == "fc2" else 10, CIFAR)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_forward_shape_on_cifar_batch(name):
    num_classes = 1 if name == "fc2" else 10
    model = cifar_model(name)
    with torch.no_grad():
        logits = model(torch.randn(2, *CIFAR))
    assert logits.shape == (2, num_classes)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    ("name", "in_shape"),
    [
        ("cnn6", DIGITS),
        ("cnn6", MNIST),
        ("cnn6", (3, 4, 5)),  # smallest valid size, non-square
        ("simplecnn", MNIST),
        ("fcn3", DIGITS),
        ("fc2", (17,)),
        ("resnet20", DIGITS),
        ("resnet18_bn", MNIST),
        ("preact_resnet18", DIGITS),
        ("wrn28_2", DIGITS),
        ("vgg11", (3, 64, 48)),  # feature map 2x1: first Linear takes 512*2*1 inputs
    ],
)
def test_forward_shape_on_other_inputs(name, in_shape):
    torch.manual_seed(0)
    model = build(name, 7, in_shape)
    with torch.no_grad():
        logits = model(torch.randn(3, *in_shape))
    assert logits.shape == (3, 7)


def test_unknown_name_lists_valid_models():
    with pytest.raises(ValueError) as info:
        build("resnet50", 10, CIFAR)
    message = str(info.value)
    assert message.startswith("unknown model 'resnet50'; valid models: ")
    assert message.endswith(", ".join(EXPECTED_NAMES))
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "minimum"), [("cnn6", 4), ("simplecnn", 10), ("vgg11", 32), ("vgg11_bn", 32)]
)
def test_too_small_input_names_the_smallest_valid_size(name, minimum):
    with pytest.raises(ValueError, match=rf"cannot take in_shape .* needs H and W >= {minimum}$"):
        build(name, 10, (1, minimum - 1, minimum))
    with pytest.raises(ValueError, match=rf"W={minimum - 1} shrinks to nothing"):
        build(name, 10, (1, minimum, minimum - 1))
    with torch.device("meta"):
        build(name, 10, (1, minimum, minimum))  # the stated minimum is accepted


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        (("cnn6", 10, (3, 32)), {}, r"needs an image in_shape \(C, H, W\)"),
        (("resnet20", 10, (3072,)), {}, r"needs an image in_shape"),
        (("cnn6", 0, CIFAR), {}, r"num_classes must be a positive int"),
        (("cnn6", True, CIFAR), {}, r"num_classes must be a positive int"),
        (("cnn6", 10, (3, 32.0, 32)), {}, r"in_shape must be a tuple of positive ints"),
        (("cnn6", 10, 32), {}, r"in_shape must be a tuple of positive ints"),
        (("cnn6", 10, ()), {}, r"in_shape must be a tuple of positive ints"),
        (("fcn3", 10, (3, 0, 32)), {}, r"in_shape must contain only positive sizes"),
        (
            ("cnn6", 10, CIFAR),
            {"width": 3},
            r"unexpected keyword argument\(s\) width; "
            r"valid keyword arguments: none$",
        ),
        (("fcn3", 10, CIFAR), {"depth": 3}, r"valid keyword arguments: width, activation$"),
        (
            ("fcn3", 10, CIFAR),
            {"activation": "gelu"},
            r"unknown activation 'gelu'; valid activations: linear, relu, tanh$",
        ),
        (("fc2", 1, CIFAR), {"activation": "sigmoid"}, r"valid activations: linear, relu, tanh$"),
        (("fc2", 1, CIFAR), {"width": 0}, r"width must be a positive int"),
        (("fc2", 1, CIFAR), {"init": "xavier"}, r"valid inits: ntk, pytorch$"),
        (("fc2", 1, CIFAR), {"output_scaling": "mup"}, r"valid: ntk, none$"),
        (("fc2", 1, CIFAR), {"init_scale": 0.0}, r"init_scale must be a positive number"),
        (("fc2", 1, CIFAR), {"bias": "yes"}, r"bias must be true or false"),
    ],
)
def test_bad_input_gives_one_line_value_error(args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        build(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_in_shape_accepts_lists_and_torch_size():
    torch.manual_seed(0)
    model = build("cnn6", 10, torch.Size([1, 8, 8]))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert count_parameters(build("fcn3", 10, [1, 28, 28])) == 199_210


# ---- fc2: the two-layer network of paper 004, Section 4.1 ------------------------------------


def _fc2(**kwargs):
    torch.manual_seed(0)
    return build(
        "fc2", kwargs.pop("num_classes", 1), (12,), width=kwargs.pop("width", 64), **kwargs
    ).double()


def test_fc2_linear_without_bias_is_a_linear_map():
    model = _fc2(activation="linear")
    x, y = torch.randn(5, 12, dtype=torch.float64), torch.randn(5, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(-2.5 * x), -2.5 * model(x))
        torch.testing.assert_close(model(x + y), model(x) + model(y))
        # equals (1/sqrt(m)) A^T W x with A, W the parameters
        expected = x @ model.hidden.weight.T @ model.output.weight.T / math.sqrt(64)
        torch.testing.assert_close(model(x), expected)


def test_fc2_relu_is_positively_homogeneous_but_not_linear():
    model = _fc2(activation="relu")
    x = torch.randn(5, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(3.0 * x), 3.0 * model(x))
        assert not torch.allclose(model(-x), -model(x))


def test_fc2_tanh_is_odd_but_not_homogeneous():
    model = _fc2(activation="tanh")
    x = torch.randn(5, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(-x), -model(x))
        assert not torch.allclose(model(3.0 * x), 3.0 * model(x))


def test_fc2_bias_breaks_homogeneity_and_starts_at_zero_under_ntk_init():
    model = _fc2(activation="linear", bias=True)
    assert torch.count_nonzero(model.hidden.bias) == 0
    assert torch.count_nonzero(model.output.bias) == 0
    with torch.no_grad():
        model.output.bias.fill_(0.5)
        x = torch.randn(5, 12, dtype=torch.float64)
        assert not torch.allclose(model(2.0 * x), 2.0 * model(x))


def test_fc2_output_scaling_is_one_over_sqrt_width():
    scaled, unscaled = _fc2(output_scaling="ntk"), _fc2(output_scaling="none")
    x = torch.randn(4, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(unscaled(x), scaled(x) * math.sqrt(64))


def test_fc2_ntk_init_variances_and_init_scale():
    torch.manual_seed(0)
    model = build("fc2", 1, (400,), width=2000)
    assert model.hidden.weight.std().item() == pytest.approx(1 / math.sqrt(400), rel=0.01)
    assert model.output.weight.std().item() == pytest.approx(1.0, rel=0.05)
    torch.manual_seed(0)
    small = build("fc2", 1, (400,), width=2000, init_scale=0.01)
    torch.testing.assert_close(small.hidden.weight, 0.01 * model.hidden.weight)
    torch.testing.assert_close(small.output.weight, 0.01 * model.output.weight)
    torch.manual_seed(0)
    default = build("fc2", 1, (400,), width=2000, init="pytorch")
    assert default.hidden.weight.abs().max().item() <= 1 / math.sqrt(400)  # U(+-1/sqrt(fan_in))


def test_fcn3_activation_changes_the_function_not_the_parameters():
    torch.manual_seed(0)
    relu = build("fcn3", 10, DIGITS)
    torch.manual_seed(0)
    tanh = build("fcn3", 10, DIGITS, activation="tanh")
    x = torch.randn(4, *DIGITS)
    for p, q in zip(relu.parameters(), tanh.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with torch.no_grad():
        assert not torch.allclose(relu(x), tanh(x))


# ---- reference details ------------------------------------------------------------------------


def test_resnet20_shortcut_subsamples_and_zero_pads_channels():
    shortcut = SubsampleZeroPadShortcut(2, 4, stride=2)
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).reshape(2, 2, 5, 5)
    out = shortcut(x)
    assert out.shape == (2, 4, 3, 3)
    torch.testing.assert_close(out[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 2:]) == 0
    assert not list(shortcut.parameters())


def test_initialisation_follows_the_references():
    vgg = cifar_model("vgg11")
    last_conv = [m for m in vgg.features if isinstance(m, torch.nn.Conv2d)][-1]
    assert torch.count_nonzero(last_conv.bias) == 0
    assert last_conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 512)), rel=0.01)
    resnet = cifar_model("resnet20")
    conv = resnet.layer3[-1].conv2
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.02)
    wrn_homura, wrn_trades = cifar_model("wrn28_2"), cifar_model("wrn34_10")
    assert torch.count_nonzero(wrn_homura.fc.bias) > 0  # PyTorch default bias (homura)
    assert torch.count_nonzero(wrn_trades.fc.bias) == 0  # zeroed as in TRADES


@pytest.mark.parametrize("name", ["cnn6", "simplecnn", "resnet20", "wrn28_2", "fc2"])
def test_same_seed_same_model(name):
    in_shape = (3, 32, 32)
    states = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        states.append(build(name, 10, in_shape).state_dict())
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)
    assert any(
        not torch.equal(states[0][k], states[2][k])
        for k in states[0]
        if states[0][k].is_floating_point() and states[0][k].numel() > 1
    )


@pytest.mark.parametrize(
    ("name", "in_shape"),
    [
        ("cnn6", DIGITS),
        ("simplecnn", (1, 12, 12)),
        ("resnet20", DIGITS),
        ("fcn3", DIGITS),
        ("fc2", DIGITS),
        ("wrn28_2", DIGITS),
        ("preact_resnet18", (3, 4, 4)),
        ("resnet18_bn", (3, 4, 4)),
        ("vgg11_bn", CIFAR),
    ],
)
def test_torch_func_functional_call_jvp_and_vjp(name, in_shape):
    """torch.func works on every architecture: functional_call evaluates the module at the
    parameters it is given, and forward-mode (jvp) and reverse-mode (vjp) derivatives in
    parameter space satisfy the adjoint identity <w, J t> = <J^T w, t> (float64, BN in eval
    mode; float32 for the networks with millions of parameters, to keep CPU time low).
    Parameters are never modified in place."""
    torch.manual_seed(0)
    model = build(name, 5, in_shape).eval()
    small = count_parameters(model) < 2_000_000
    dtype, tolerance = (torch.float64, 1e-10) if small else (torch.float32, 1e-4)
    model = model.to(dtype)
    x = torch.randn(3, *in_shape, dtype=dtype)
    params = {k: v.detach() for k, v in model.named_parameters()}
    versions = {k: v._version for k, v in model.named_parameters()}

    def logits(p):
        return functional_call(model, p, (x,))

    with torch.no_grad():
        torch.testing.assert_close(logits(params), model(x))
        moved = {k: v + 0.1 * torch.randn_like(v) for k, v in params.items()}
        assert not torch.allclose(logits(moved), model(x))
        torch.testing.assert_close(logits(params), model(x))  # nothing was left behind

    tangent = {k: torch.randn_like(v) for k, v in params.items()}
    out, directional = jvp(logits, (params,), (tangent,))
    _, pullback = vjp(logits, params)
    cotangent = torch.randn_like(out)
    (gradient,) = pullback(cotangent)
    forward_mode = (cotangent * directional).sum()
    reverse_mode = sum((gradient[k] * tangent[k]).sum() for k in params)
    assert directional.abs().sum() > 0
    torch.testing.assert_close(forward_mode, reverse_mode, rtol=tolerance, atol=tolerance)
    assert {k: v._version for k, v in model.named_parameters()} == versions


# ---- Hydra configs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_hydra_config_builds_its_model(name):
    path = CONF_MODEL_DIR / f"{name}.yaml"
    text = path.read_text()
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"{path.name}: key without a comment: {line!r}"
    cfg = OmegaConf.load(path)
    assert set(cfg) == {"name", "kwargs"}
    assert cfg.name == name
    kwargs = OmegaConf.to_container(cfg.kwargs)
    with torch.device("meta"):
        model = build(cfg.name, 10, CIFAR, **kwargs)
    assert count_parameters(model) > 0


def test_every_config_file_is_a_registered_model():
    assert sorted(p.stem for p in CONF_MODEL_DIR.glob("*.yaml")) == EXPECTED_NAMES
