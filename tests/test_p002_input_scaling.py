"""Paper 002, App. C.2: inputs scaled by a constant after standardisation (data.input_scale)."""

from __future__ import annotations

import pytest
import torch

from ijr.data import build_datamodule
from ijr.data.config import parse_data_config


def _dm(scale, **extra):
    cfg = {
        "name": "synthetic",
        "n_train": 64,
        "n_test": 32,
        "shape": [3, 4, 4],
        "input_scale": scale,
    }
    cfg["batch_size"] = 16
    cfg.update(extra)
    dm = build_datamodule(cfg, 0)
    dm.setup()
    return dm


def test_inputs_are_the_standardised_ones_times_the_scale():
    base, scaled = _dm(1.0), _dm(1.5)
    torch.testing.assert_close(scaled.train_x, 1.5 * base.train_x)
    torch.testing.assert_close(scaled.test_x, 1.5 * base.test_x)
    assert torch.equal(scaled.train_y, base.train_y)
    # the affine map raw -> input (pixel-space attacks, the padding of augmentation) follows
    torch.testing.assert_close(scaled.channel_std, base.channel_std / 1.5)
    torch.testing.assert_close(scaled.pad_fill, 1.5 * base.pad_fill)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), True, "2"])
def test_bad_scale_is_one_line(bad):
    with pytest.raises(ValueError, match="data.input_scale must be a positive number"):
        parse_data_config({"name": "synthetic", "input_scale": bad})
