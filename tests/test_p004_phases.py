"""The four EOS phases and the anomaly points of paper 004 (Section 3.1, Figures 1-2) on
synthetic probe series."""

from __future__ import annotations

import math

import pytest

from ijr.probes.eos_phase import EOSPhaseTracker


def _run(series, **kwargs):
    tracker = EOSPhaseTracker(**kwargs)
    phases = []
    for step, row in enumerate(series):
        sharp, loss = row[0], row[1]
        norm = row[2] if len(row) > 2 else None
        phase, _ = tracker.update(step, sharpness=sharp, threshold=2.0, loss=loss, output_norm=norm)
        phases.append(phase)
    return tracker, phases


def test_one_full_cycle_and_back_to_phase_one():
    # sharpness (threshold 2), loss
    series = [
        (1.0, 1.0),
        (1.5, 0.8),
        (2.1, 0.7),
        (2.3, 0.75),
        (2.2, 1.5),
        (1.8, 1.2),
        (1.6, 0.9),
        (1.7, 0.74),
        (1.9, 0.6),
        (2.2, 0.5),
    ]
    tracker, phases = _run(series)
    assert phases == [1, 1, 2, 2, 3, 4, 4, 1, 1, 2]
    m = tracker.markers
    assert m["eos_phase_boundaries"] == [[0, 1], [2, 2], [4, 3], [5, 4], [7, 1], [9, 2]]
    assert m["eos_first_phase2_step"] == 2
    assert m["eos_first_phase4_step"] == 5
    assert m["eos_cycles"] == 1


def test_loss_tolerance_ends_phase_four_earlier():
    series = [(1.0, 1.0), (2.1, 0.7), (2.0, 1.5), (1.8, 0.9), (1.7, 0.76), (1.7, 0.69)]
    _, strict = _run(series)
    _, loose = _run(series, loss_tolerance=0.1)
    assert strict == [1, 2, 3, 4, 4, 1]
    assert loose == [1, 2, 3, 4, 1, 1]


def test_drop_straight_from_phase_two_passes_phase_three():
    tracker, phases = _run([(1.0, 1.0), (2.5, 0.9), (1.5, 2.0), (2.4, 1.0)])
    assert phases == [1, 2, 4, 2]
    assert tracker.markers["eos_phase_boundaries"] == [[0, 1], [1, 2], [2, 3], [2, 4], [3, 2]]
    assert tracker.markers["eos_cycles"] == 1


def test_anomaly_points_and_fraction():
    # sharpness up/up/down/down ; ||A|| up/down/down/up -> anomalies at steps 2 and 4
    series = [(1.0, 1.0, 1.0), (1.2, 1.0, 1.1), (1.4, 1.0, 1.05), (1.3, 1.0, 1.0), (1.1, 1.0, 1.2)]
    tracker = EOSPhaseTracker()
    flags = []
    for step, (s, loss, a) in enumerate(series):
        _, flag = tracker.update(step, sharpness=s, threshold=2.0, loss=loss, output_norm=a)
        flags.append(flag)
    assert math.isnan(flags[0])
    assert flags[1:] == [0.0, 1.0, 0.0, 1.0]
    m = tracker.markers
    assert (m["anomaly_count"], m["anomaly_pairs"]) == (2, 4)
    assert m["anomaly_fraction"] == pytest.approx(0.5)


def test_growth_and_decrease_fractions():
    tracker = EOSPhaseTracker()
    rows = [  # sharpness, loss, d_v1, rest
        (1.0, 1.0, 0.1, 0.9),
        (2.2, 0.9, 0.2, 0.8),
        (2.4, 1.2, 0.4, 0.7),
        (2.3, 1.5, 0.3, 0.75),
    ]
    for step, (s, loss, dv1, rest) in enumerate(rows):
        tracker.update(step, sharpness=s, threshold=2.0, loss=loss, d_v1=dv1, rest_loss=rest)
    m = tracker.markers
    assert m["dv1_growth_fraction"] == pytest.approx(1 / 2)  # pairs (1,2) grew, (2,3) fell
    assert m["rest_decrease_fraction"] == pytest.approx(2 / 3)
    assert m["loss_decrease_fraction"] == pytest.approx(1 / 3)


def test_state_round_trip_gives_the_same_continuation():
    series = [(1.0, 1.0, 1.0), (2.1, 0.7, 1.2), (2.3, 0.8, 1.1), (1.9, 1.0, 1.0), (1.5, 0.6, 0.9)]
    whole = EOSPhaseTracker()
    for step, (s, loss, a) in enumerate(series):
        whole.update(step, sharpness=s, threshold=2.0, loss=loss, output_norm=a)
    first = EOSPhaseTracker()
    for step, (s, loss, a) in enumerate(series[:3]):
        first.update(step, sharpness=s, threshold=2.0, loss=loss, output_norm=a)
    resumed = EOSPhaseTracker()
    resumed.load_state_dict(first.state_dict())
    for step, (s, loss, a) in list(enumerate(series))[3:]:
        resumed.update(step, sharpness=s, threshold=2.0, loss=loss, output_norm=a)
    assert resumed.markers == whole.markers


def test_refuses_steps_out_of_order_and_a_bad_tolerance():
    tracker = EOSPhaseTracker()
    tracker.update(5, sharpness=1.0, threshold=2.0)
    with pytest.raises(ValueError, match="step order"):
        tracker.update(4, sharpness=1.0, threshold=2.0)
    with pytest.raises(ValueError, match="loss_tolerance"):
        EOSPhaseTracker(loss_tolerance=-1)
