r"""The treatment model: a dimensionless stimulus after each intradermal injection.

Each injection session at day :math:`t_i` (days since the site's first treatment) adds an
onset-decay pulse

.. math::

    p(t) = A \, \frac{(1 - e^{-t/\tau_{on}})\, e^{-t/\tau_{off}}}{f_{max}}, \qquad t \ge 0,

and 0 before the injection, where :math:`f_{max}` is the peak of the un-normalised pulse (so
the pulse peaks at exactly :math:`A`, at :math:`t^* = \tau_{on}\ln(1 + \tau_{off}/\tau_{on})`).
The site's stimulus :math:`S(t)` is the sum of the pulses of all sessions. The "cells" arm
(HF-MSC suspension or micrografts) uses the amplitude ``cells_amplitude`` and decay
``decay_days``; the "saline" arm gets only the wound-healing response to needling, a small
and short pulse (``saline_amplitude``, ``saline_decay_days``); an "untreated" site has
:math:`S = 0`.

The follicle population (:mod:`hairtrial.simulate.population`) turns the stimulus into
biology: it multiplies the telogen→anagen and kenogen→anagen re-entry hazard by
:math:`1 + g_{re} S` and drives a per-follicle diameter-recovery state towards
:math:`\min(1, g_{rec} S)` (boosted below the 60 µm index) with the time constant
``recovery_days``. The gains live here, in :class:`TreatmentParams`, so a trial preset's
``[treatment]`` table holds everything about the intervention.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hairtrial._validate import InputError, check_choice, check_fields, check_range

__all__ = [
    "ARMS",
    "SCHEDULE_KINDS",
    "TreatmentParams",
    "schedule_days",
    "stimulus",
]

#: Arms of a split-site trial: autologous cells, saline (needling only), no injection.
ARMS: tuple[str, ...] = ("cells", "saline", "untreated")

#: Injection schedules supported by :func:`schedule_days`.
SCHEDULE_KINDS: tuple[str, ...] = ("single", "repeated", "yearly")

# Allowed range of every field, inclusive. Integer-valued fields are listed in _INT_FIELDS.
_RANGES: dict[str, tuple[float, float]] = {
    "onset_days": (0.5, 365.0),
    "decay_days": (1.0, 3650.0),
    "cells_amplitude": (0.0, 100.0),
    "saline_amplitude": (0.0, 100.0),
    "saline_decay_days": (1.0, 3650.0),
    "reentry_gain": (0.0, 100.0),
    "recovery_gain": (0.0, 100.0),
    "recovery_days": (1.0, 365.0),
    "miniaturised_extra_gain": (0.0, 100.0),
    "miniaturised_threshold_um": (1.0, 500.0),
    "consolidation": (0.0, 1.0),
    "injection_points": (1.0, 1000.0),
    "cells_per_point": (0.0, 1e10),
    "volume_ul_per_point": (0.0, 10000.0),
}
_INT_FIELDS = frozenset({"injection_points"})


@dataclass(frozen=True)
class TreatmentParams:
    r"""Everything about one intervention: stimulus time course, biological gains, dose.

    The defaults are the calibration to the HF-MSC split-site trial of DESIGN.md (terminal
    fraction and shaft diameter up at months 1–3, back near baseline by months 7–9).

    Parameters
    ----------
    onset_days : float, days
        Onset time constant :math:`\tau_{on}` of each injection's pulse (both arms).
    decay_days : float, days
        Decay time constant :math:`\tau_{off}` of the cells arm's pulse.
    cells_amplitude : float, dimensionless
        Peak stimulus of one cells injection session.
    saline_amplitude : float, dimensionless
        Peak stimulus of one saline (needling-only) session; small.
    saline_decay_days : float, days
        Decay time constant of the needling-only pulse; short.
    reentry_gain : float, dimensionless
        :math:`g_{re}`: the telogen→anagen and kenogen→anagen re-entry hazard is multiplied
        by :math:`1 + g_{re} S(t)`.
    recovery_gain : float, dimensionless
        :math:`g_{rec}`: the diameter-recovery state relaxes towards
        :math:`\min(1, g_{rec} S(t) b)`, where :math:`b` is the boost below.
    recovery_days : float, days
        Time constant of the diameter-recovery state (how fast it follows the stimulus,
        up and down).
    miniaturised_extra_gain : float, dimensionless
        Extra recovery gain for follicles whose own (miniaturised) diameter is below
        ``miniaturised_threshold_um``: :math:`b = 1 +` this value there, 1 elsewhere.
    miniaturised_threshold_um : float, µm
        The predictive index separating miniaturised follicles (60 µm in the trial).
    consolidation : float
        Share of a follicle's recovery at the start of a new anagen that becomes lasting
        (its own size moves towards the potential size by ``consolidation·r``, which also
        lengthens its anagen and shortens its rests). 0 for a purely paracrine, transient
        effect (cell suspension); > 0 where grafted follicle cells can rebuild the papilla.
    injection_points : int
        Injection points per site (descriptive; 9 in the trial).
    cells_per_point : float, cells
        Cells per injection point (descriptive; 1×10⁵ in the trial).
    volume_ul_per_point : float, µl
        Injected volume per point (descriptive; 100 µl in the trial).
    """

    onset_days: float = 10.0
    decay_days: float = 60.0
    cells_amplitude: float = 1.0
    saline_amplitude: float = 0.05
    saline_decay_days: float = 14.0
    reentry_gain: float = 0.2
    recovery_gain: float = 0.35
    recovery_days: float = 14.0
    miniaturised_extra_gain: float = 0.5
    miniaturised_threshold_um: float = 60.0
    consolidation: float = 0.0
    injection_points: int = 9
    cells_per_point: float = 1e5
    volume_ul_per_point: float = 100.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str) -> TreatmentParams:
        """Build validated parameters from a mapping (e.g. a preset's ``[treatment]`` table).

        Parameters
        ----------
        d : mapping of str to number
            Field values; fields left out keep their defaults.
        source : str
            Where the values came from (a file and table), named in every error.

        Returns
        -------
        TreatmentParams

        Raises
        ------
        InputError
            For an unknown field, a non-number, or a value outside the field's range; the
            message names `source`, the field and the allowed range.
        """
        check_fields(d, known=(f.name for f in fields(cls)), what="treatment", source=source)
        values: dict[str, Any] = {}
        for key, (low, high) in _RANGES.items():
            if key not in d:
                continue
            raw = d[key]
            if isinstance(raw, bool):
                raise InputError(
                    f"{key} ({source}): expected a number in [{low}, {high}], got {raw!r}"
                )
            number = check_range(raw, name=key, low=low, high=high, path=source)
            if key in _INT_FIELDS:
                if number != int(number):
                    raise InputError(f"{key} ({source}): expected a whole number, got {raw!r}")
                values[key] = int(number)
            else:
                values[key] = number
        return cls(**values)

    def with_overrides(self, d: Mapping[str, Any], *, source: str) -> TreatmentParams:
        """Return a copy with the fields in `d` replaced, validated like :meth:`from_dict`.

        Parameters
        ----------
        d : mapping of str to number
            Fields to replace.
        source : str
            Where the overrides came from, named in every error.

        Returns
        -------
        TreatmentParams
        """
        merged = asdict(self)
        if not isinstance(d, Mapping):
            raise InputError(f"{source}: expected a table of treatment fields, got {d!r}")
        merged.update(d)
        return TreatmentParams.from_dict(merged, source=source)

    def amplitude(self, arm: str) -> float:
        """Return the peak stimulus of one session in `arm` (0 for "untreated").

        Parameters
        ----------
        arm : {'cells', 'saline', 'untreated'}
            Trial arm.

        Returns
        -------
        float, dimensionless
        """
        check_choice(arm, name="arm", choices=ARMS)
        if arm == "cells":
            return self.cells_amplitude
        if arm == "saline":
            return self.saline_amplitude
        return 0.0

    def decay(self, arm: str) -> float:
        """Return the decay time constant of one session's pulse in `arm`.

        Parameters
        ----------
        arm : {'cells', 'saline', 'untreated'}
            Trial arm.

        Returns
        -------
        float, days
        """
        check_choice(arm, name="arm", choices=ARMS)
        return self.saline_decay_days if arm == "saline" else self.decay_days


def schedule_days(
    kind: str, *, n: int = 3, interval_days: int = 45, horizon_days: int = 1095
) -> tuple[int, ...]:
    """Return the injection days of a schedule, relative to the first treatment.

    Parameters
    ----------
    kind : {'single', 'repeated', 'yearly'}
        ``single``: one session at day 0. ``repeated``: `n` sessions every `interval_days`.
        ``yearly``: a session every 365 days from day 0 up to and including `horizon_days`.
    n : int
        Number of sessions of a ``repeated`` schedule (1–100).
    interval_days : int, days
        Days between ``repeated`` sessions (1–3650).
    horizon_days : int, days
        Last day a ``yearly`` session may fall on (0–36500).

    Returns
    -------
    tuple of int, days
        Session days, ascending, starting with 0.

    Raises
    ------
    InputError
        For an unknown kind or an out-of-range option.
    """
    check_choice(kind, name="kind", choices=SCHEDULE_KINDS)
    if kind == "single":
        return (0,)
    if kind == "repeated":
        count = _whole(n, name="n", low=1, high=100)
        step = _whole(interval_days, name="interval_days", low=1, high=3650)
        return tuple(i * step for i in range(count))
    horizon = _whole(horizon_days, name="horizon_days", low=0, high=36500)
    return tuple(range(0, horizon + 1, 365))


def _whole(value: Any, *, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name}: expected a whole number in [{low}, {high}], got {value!r}")
    number = check_range(value, name=name, low=low, high=high)
    if number != int(number):
        raise InputError(f"{name}: expected a whole number, got {value!r}")
    return int(number)


def _pulse(t: NDArray[np.float64], *, onset: float, decay: float) -> NDArray[np.float64]:
    """Unit-peak onset-decay pulse; 0 for t < 0."""
    t_peak = onset * math.log1p(decay / onset)
    peak = -math.expm1(-t_peak / onset) * math.exp(-t_peak / decay)
    tc = np.maximum(t, 0.0)
    shape = -np.expm1(-tc / onset) * np.exp(-tc / decay)
    out: NDArray[np.float64] = np.where(t >= 0.0, shape / peak, 0.0)
    return out


def stimulus(
    days: ArrayLike, *, arm: str, params: TreatmentParams, schedule: Sequence[int]
) -> NDArray[np.float64]:
    r"""Return the dimensionless stimulus of a site on each of `days`.

    Parameters
    ----------
    days : (T,) array_like of float, days
        Days since the site's first treatment (may be negative: before treatment).
    arm : {'cells', 'saline', 'untreated'}
        The site's arm: cells pulse, needling-only pulse, or nothing.
    params : TreatmentParams
        Time constants and amplitudes.
    schedule : sequence of int, days
        Injection session days (see :func:`schedule_days`); each adds one pulse.

    Returns
    -------
    (T,) ndarray of float, dimensionless
        :math:`S(t) \ge 0`: 0 before the first session and for "untreated"; each session's
        pulse peaks at the arm's amplitude ``onset_days·ln(1 + decay/onset)`` days after it.

    Raises
    ------
    InputError
        For an unknown arm, non-finite days or a non-integer schedule.
    """
    check_choice(arm, name="arm", choices=ARMS)
    if not isinstance(params, TreatmentParams):
        raise InputError(f"params: expected TreatmentParams, got {type(params).__name__}")
    t = np.asarray(days, dtype=np.float64)
    if t.ndim != 1:
        raise InputError(f"days: expected a 1-D array of days, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InputError("days: contains NaN or infinite values")
    sessions = [_whole(s, name="schedule", low=0, high=36500) for s in schedule]
    out = np.zeros(t.shape, dtype=np.float64)
    amplitude = params.amplitude(arm)
    if amplitude == 0.0:
        return out
    decay = params.decay(arm)
    for session in sessions:
        out += amplitude * _pulse(t - session, onset=params.onset_days, decay=decay)
    return out
