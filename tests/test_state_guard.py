"""ijr.state_guard.preserved: the one guard behind probes, two-pass methods and attacks restores
buffers, module flags and the global RNG exactly, and only what it is asked to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ijr.state_guard import preserved


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: b.detach().clone() for n, b in model.named_buffers()}


def test_buffers_are_restored_bit_for_bit():
    model = _model().train()
    before = _buffers(model)
    with preserved(model):
        model(torch.randn(8, 3))  # a training forward moves the BatchNorm running statistics
        assert not torch.equal(model[1].running_mean, before["1.running_mean"])
    after = _buffers(model)
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name
    assert int(model[1].num_batches_tracked) == 0


def test_mixed_module_flags_are_restored():
    model = _model().eval()
    model[1].train()  # a mix: only the BatchNorm layer in train mode
    flags = [m.training for m in model.modules()]
    with preserved(model):
        model.train()
        model[2].eval()
    assert [m.training for m in model.modules()] == flags


def test_restores_on_an_exception():
    model = _model().train()
    before = _buffers(model)
    with pytest.raises(RuntimeError, match="boom"), preserved(model, rng=True):
        model.eval()
        model[1].running_var.add_(1.0)
        torch.rand(3)
        raise RuntimeError("boom")
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model[1].running_var, before["1.running_var"])


def test_cpu_rng_restored_only_when_asked():
    model = _model()
    state = torch.get_rng_state()
    with preserved(model, rng=True):
        torch.rand(5)
    assert torch.equal(torch.get_rng_state(), state)
    with preserved(model):  # rng=False: draws inside are the caller's business
        torch.rand(5)
    assert not torch.equal(torch.get_rng_state(), state)


def test_selected_parts_only():
    model = _model().train()
    with preserved(model, buffers=False, modes=True):
        model(torch.randn(8, 3))
        model.eval()
    assert model.training and int(model[1].num_batches_tracked) == 1  # buffers not kept
    with preserved(model, buffers=True, modes=False):
        model.eval()
    assert not model.training  # flags not kept


def test_rng_only_needs_no_model_and_model_parts_need_one():
    state = torch.get_rng_state()
    with preserved(None, buffers=False, modes=False, rng=True):
        torch.randn(4)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match="needs the model"):
        with preserved(None):
            pass


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_of_the_model_device_restored():
    model = _model().cuda()
    cpu, gpu = torch.get_rng_state(), torch.cuda.get_rng_state()
    with preserved(model, rng=True):
        torch.rand(5, device="cuda")
        torch.rand(5)
        model(torch.randn(8, 3, device="cuda"))
    assert torch.equal(torch.get_rng_state(), cpu)
    assert torch.equal(torch.cuda.get_rng_state(), gpu)


def test_curvature_seeds_the_global_rng_only_inside_its_guard():
    """ijr.curvature reseeds the global RNG for dropout masks only within rng_guard, which puts
    the caller's state back (issue 18, item 4); outside it, the seeding refuses."""
    from ijr.curvature._functional import _seed_global, rng_guard

    with pytest.raises(RuntimeError, match="outside rng_guard"):
        _seed_global(1, torch.device("cpu"))
    state = torch.get_rng_state()
    with rng_guard(torch.device("cpu")):
        _seed_global(1, torch.device("cpu"))
        torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
