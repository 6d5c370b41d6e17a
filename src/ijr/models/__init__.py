"""Model zoo: plain ``nn.Module`` classifiers and a registry (docs/design.md, contract 3).

>>> from ijr.models import build, names
>>> model = build("cnn6", num_classes=10, in_shape=(3, 32, 32))
>>> sum(p.numel() for p in model.parameters())
511926

Every model maps a batch of inputs of shape ``(batch, *in_shape)`` to logits of shape
``(batch, num_classes)``. The registered networks, their references and parameter counts are
those of paper 000 (Lee, Park & Lee, ICML 2023), Appendix E.2 and Tables 1-2, and of companion
papers 002 (MacDonald et al.) and 004 (Li, Wang & Li); see each model's docstring and
``docs/deviations_models.md``.

Models are deterministic given ``torch.manual_seed``, hold no Lightning or Hydra state, and
modify no parameter in place in ``forward``, so they work with ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from . import coordinate, mlp, resnet, resnet_cifar, small_cnn, vgg, wide_resnet  # noqa: F401  (registers)
from ._registry import (
    check_keywords,
    check_num_classes,
    get_spec,
    normalise_in_shape,
    registered_names,
)

__all__ = ["build", "count_parameters", "describe", "names"]


def names() -> list[str]:
    """Sorted registry names of every model :func:`build` accepts."""
    return registered_names()


def describe(name: str) -> str:
    """One line saying what the registered model ``name`` is and which reference it follows."""
    return get_spec(name).summary


def build(name: str, num_classes: int, in_shape: Sequence[int], **kwargs) -> nn.Module:
    """Build the registered model ``name`` for ``num_classes`` outputs and inputs of ``in_shape``.

    ``in_shape`` excludes the batch dimension: (C, H, W) for images, e.g. (3, 32, 32) CIFAR,
    (1, 28, 28) MNIST, (1, 8, 8) scikit-learn digits; the fully connected models (``fcn3``,
    ``fc2``) flatten any shape. ``kwargs`` are model-specific options (only ``fcn3`` and ``fc2``
    have any). Bad input raises a one-line ``ValueError``: unknown names list the valid ones,
    unknown keywords list the valid keywords, and an input too small for a model's downsampling
    says the smallest size it accepts.
    """
    spec = get_spec(name)
    check_keywords(spec, kwargs)
    num_classes = check_num_classes(num_classes)
    dims = normalise_in_shape(in_shape)
    return spec.builder(num_classes, dims, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (the ``m`` of paper 000, App. E.2); buffers not counted."""
    return sum(parameter.numel() for parameter in model.parameters())
