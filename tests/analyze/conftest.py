"""Shared small trials for the analysis tests (simulated once per session)."""

from __future__ import annotations

import pytest

from hairtrial.simulate.config import load_preset
from hairtrial.simulate.trial import simulate_trial, with_overrides


@pytest.fixture(scope="session")
def sim_trial():
    """A 12-subject nanfang-2023 truth trial (no images)."""
    return simulate_trial(with_overrides(load_preset("nanfang-2023"), subjects=12), seed=3)
