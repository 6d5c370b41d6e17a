"""Model registry: maps a registry name to a builder ``(num_classes, in_shape, **kwargs)``.

Every builder module in :mod:`ijr.models` registers its models with :func:`register`;
:func:`ijr.models.build` validates the arguments once, in one place, so every model gives the
same one-line errors for bad input (docs/design.md, contract 3).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its builder and a one-line description naming its reference."""

    name: str
    builder: Builder
    summary: str
    keyword_names: tuple[str, ...]


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, summary: str) -> Callable[[Builder], Builder]:
    """Class/function decorator adding a builder to the registry under ``name``.

    The builder's signature must be ``(num_classes, in_shape, *, kw1=..., kw2=...)``: everything
    after the two positional arguments is keyword-only, so the registry can list the valid
    keyword arguments in its error messages.
    """

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model name '{name}' is registered twice")
        parameters = list(inspect.signature(builder).parameters.values())
        positional = [p.name for p in parameters[:2]]
        if positional != ["num_classes", "in_shape"]:
            raise TypeError(
                f"builder for '{name}' must start with (num_classes, in_shape), got {positional}"
            )
        if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in parameters[2:]):
            raise TypeError(f"builder for '{name}': extra arguments must be keyword-only")
        keyword_names = tuple(p.name for p in parameters[2:])
        _REGISTRY[name] = ModelSpec(name, builder, summary, keyword_names)
        return builder

    return decorator


def registered_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(registered_names())}")
    return _REGISTRY[name]


def check_keywords(spec: ModelSpec, kwargs: dict) -> None:
    unexpected = sorted(set(kwargs) - set(spec.keyword_names))
    if unexpected:
        valid = ", ".join(spec.keyword_names) if spec.keyword_names else "none"
        raise ValueError(
            f"model '{spec.name}' got unexpected keyword argument(s) {', '.join(unexpected)}; "
            f"valid keyword arguments: {valid}"
        )


def normalise_in_shape(in_shape: Sequence[int]) -> tuple[int, ...]:
    """Return ``in_shape`` as a tuple of positive Python ints, or raise a one-line ValueError."""
    try:
        dims = tuple(in_shape)
    except TypeError:
        raise ValueError(
            f"in_shape must be a tuple of positive ints such as (3, 32, 32), got {in_shape!r}"
        ) from None
    # ints, numpy ints and torch.Size entries have __index__; floats, strings and bools are refused
    if not dims or any(isinstance(d, bool) or not hasattr(type(d), "__index__") for d in dims):
        raise ValueError(
            f"in_shape must be a tuple of positive ints such as (3, 32, 32), got {in_shape!r}"
        )
    dims = tuple(d.__index__() for d in dims)
    if any(d < 1 for d in dims):
        raise ValueError(f"in_shape must contain only positive sizes, got {dims}")
    return dims


def check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes
