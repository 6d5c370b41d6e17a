"""Display names shared by tables and figures: datasets, models, methods, config keys, metrics.

Every lookup falls back to the raw name, so a new model or metric shows up under its registry
name instead of failing.
"""

from __future__ import annotations

import math

DATASETS = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "mnist": "MNIST",
    "digits": "digits",
    "synthetic": "synthetic",
}

# Training-set sizes of the datasets whose full batch the paper prints as a number (B = 50000).
TRAIN_SIZES = {"cifar10": 50000, "cifar100": 50000, "mnist": 60000}

MODELS = {
    "simplecnn": "SimpleCNN",
    "wrn28_2": "WRN-28-2",
    "wrn28_10": "WRN-28-10",
    "wrn34_10": "WRN-34-10",
    "cnn6": "6CNN",
    "vgg11": "VGG-11",
    "vgg11_bn": "VGG-11-BN",
    "resnet20": "ResNet-20",
    "resnet18": "ResNet-18",
    "resnet18_bn": "ResNet-18-BN",
    "preact_resnet18": "PreAct ResNet-18",
    "fcn3": "3FCN",
    "fc2": "2FC",
}
# Row order of the paper's tables (others follow alphabetically).
MODEL_ORDER = ("simplecnn", "cnn6", "fcn3", "resnet20", "vgg11", "wrn28_2", "wrn28_10")

METHODS = {
    "sgd": "SGD",
    "sam": "SAM",
    "asam": "ASAM",
    "ejr": "EJR",
    "ejr_efficient": "EJR (efficient)",
    "ejr_v2": "EJR.v2",
}

# Regulariser parameters of the EJR variants: config key (under ``method.``) -> canonical name
# used in results/paper/*.csv (``reg_param`` column) and in generated tables.
REG_KEYS = {"lambda_reg": "lambda_reg", "rho": "rho_reg", "mu": "mu_reg"}
REG_SYMBOLS = {
    "lambda_reg": ("λ_reg", r"\lambda_{reg}"),
    "rho_reg": ("ρ_reg", r"\rho_{reg}"),
    "mu_reg": ("μ_reg", r"\mu_{reg}"),
    "rho": ("ρ", r"\rho"),
}

# Short labels of config keys in figure legends (η = 0.01, B = 128).
CONFIG_SYMBOLS = {
    "optim.lr": "η",
    "data.batch_size": "B",
    "method.name": "method",
    "method.lambda_reg": "λ_reg",
    "method.rho": "ρ",
    "method.mu": "μ",
    "trainer.max_epochs": "epochs",
    "data.name": "data",
    "model.name": "model",
    "loss.name": "loss",
}

METRIC_LABELS = {
    "probe/sharpness": r"$\|H\|_\sigma$",
    "probe/sharpness_gn": r"$\|G\|_\sigma$",
    "probe/jacobian_norm_sq": r"$\|\langle J\rangle\|^2$",
    "probe/jacobian_fro_sq": r"$\|\langle J\rangle\|_F^2$",
    "probe/jacobian_ones_sq": r"$\|\langle J\rangle\hat{1}\|^2$",
    "probe/impurity_mean": r"$\langle\lambda^{(1)}\rangle$",
    "probe/impurity_q25": r"$\lambda^{(1)}$ 25% quantile",
    "probe/impurity_q75": r"$\lambda^{(1)}$ 75% quantile",
    "probe/lambda_hat": r"$\hat\lambda^*$",
    "probe/stability_threshold": r"$2/\eta$",
    "probe/sgd_threshold": r"$2\rho_B/\eta$",
    "probe/rho_b": r"$\rho_B$",
    "probe/weight_norm": r"$\|\theta\|$",
    "probe/logit_norm": r"$\langle\|z\|\rangle$",
    "probe/logit_sum_abs": r"$\langle|\hat{1}^T z|\rangle$",
    "probe/dist_from_init": r"$\|\theta-\theta^{(0)}\|$",
    "probe/output_layer_norm": "output-layer weight norm",
    "probe/io_jacobian_max": "input–output Jacobian (max)",
    "probe/gen_gap": "generalisation gap",
    "test/acc": "test accuracy (%)",
    "test/loss": "test loss",
    "train/loss": "train loss (batch)",
    "train/acc": "train accuracy (batch, %)",
    "train_full/loss": "train loss",
    "train_full/acc": "train accuracy (%)",
    "train/lr": "learning rate",
    "arp/phase": "IJR phase",
}

# Colours of the paper's Figures 4 and 5: Jacobian norm red, sharpness purple, impurity orange.
METRIC_COLORS = {
    "probe/jacobian_norm_sq": "tab:red",
    "probe/jacobian_fro_sq": "tab:red",
    "probe/jacobian_ones_sq": "tab:red",
    "probe/sharpness": "tab:purple",
    "probe/sharpness_gn": "tab:purple",
    "probe/impurity_mean": "darkorange",
}

# Metrics stored as fractions but shown in percent.
PERCENT_METRICS = ("test/acc", "train/acc", "train_full/acc", "val/acc")


def dataset_name(key) -> str:
    return DATASETS.get(str(key), str(key))


def model_name(key) -> str:
    return MODELS.get(str(key), str(key))


def method_name(key) -> str:
    return METHODS.get(str(key), str(key))


def metric_label(name: str) -> str:
    """Axis label of a metric; ``a*b`` (a product of two metrics) joins the two labels."""
    if "*" in name:
        return " ".join(metric_label(part) for part in name.split("*"))
    return METRIC_LABELS.get(name, name)


def format_number(value) -> str:
    """Compact number for labels and keys: 0.01, 128, 1e-05 (``%g``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return f"{value:g}"
    return str(value)


def reg_label(reg_param: str, flavor: str = "md") -> str:
    """``rho_reg=2;mu_reg=0.001`` -> ``ρ_reg=2, μ_reg=0.001`` (md) or LaTeX math (tex)."""
    if not reg_param:
        return ""
    parts = []
    for item in str(reg_param).split(";"):
        key, _, value = item.partition("=")
        plain, tex = REG_SYMBOLS.get(key, (key, key.replace("_", r"\_")))
        parts.append(f"${tex}={value}$" if flavor == "tex" else f"{plain}={value}")
    return ", ".join(parts)


def config_label(key: str, value) -> str:
    """Legend label of one config value: ``η=0.01``, ``B=128``, ``method=EJR``."""
    symbol = CONFIG_SYMBOLS.get(key, key)
    if key == "method.name":
        return method_name(value)
    return f"{symbol}={format_number(value)}"
