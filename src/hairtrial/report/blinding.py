"""Arm labels as a report shows them: coded ("Arm A", "Arm B") unless unblinded.

The coding is fixed by a hash of the trial name, so the same trial always gets the same
codes and the codes say nothing about which arm is which (alphabetical or treated-first
coding would). Between-arm differences are always shown as the first coded arm minus the
second (``Arm A − Arm B``), with the sign of the analysis' treated-minus-control estimates
flipped when the treated arm is coded second, so the direction of a difference does not
reveal the coding either. Free text coming from the analysis (model formulas, notes) has
every arm name replaced by a neutral ``[arm]``.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

_MASK = "[arm]"


@dataclass(frozen=True)
class ArmCoding:
    """How arms are labelled in one report.

    Parameters
    ----------
    blinded : bool
        Coded labels (True) or the real arm names (False).
    labels : dict of str to str
        Real arm name → label shown.
    order : tuple of str
        Labels in display order (coded: A, B, ...; unblinded: treated, control, others).
    treated, control : str
        Real names of the treated and the control arm (never shown when blinded).
    """

    blinded: bool
    labels: dict[str, str]
    order: tuple[str, ...]
    treated: str
    control: str

    @property
    def first(self) -> str:
        """Label of the arm a difference is taken from (``first − second``)."""
        return min(self.labels[self.treated], self.labels[self.control], key=self.order.index)

    @property
    def second(self) -> str:
        """Label of the arm a difference is taken against."""
        return max(self.labels[self.treated], self.labels[self.control], key=self.order.index)

    @property
    def sign(self) -> int:
        """+1 when ``first − second`` is treated − control, −1 when it is the reverse."""
        return 1 if self.first == self.labels[self.treated] else -1

    @property
    def difference(self) -> str:
        """Label of a between-arm difference, e.g. ``Arm A − Arm B``."""
        return f"{self.first} − {self.second}"

    def label(self, arm: object) -> str:
        """Return the label shown for real arm name `arm` (masked when unknown)."""
        return self.labels.get(str(arm), _MASK if self.blinded else str(arm))

    def relabel(self, arms: pd.Series) -> pd.Series:
        """Map a column of real arm names to shown labels."""
        return arms.astype(str).map(self.label)

    def mask(self, text: str) -> str:
        """Replace every real arm name in `text` by ``[arm]`` when blinded."""
        if not self.blinded or not text:
            return text
        return _arm_pattern(tuple(self.labels)).sub(_MASK, text)

    def directed(self, frame: pd.DataFrame, *, value: str = "estimate") -> pd.DataFrame:
        """Express treated-minus-control estimates as ``first − second``.

        Parameters
        ----------
        frame : DataFrame
            With column `value` and optionally ``ci_low``/``ci_high`` on the same scale.
        value : str
            Column holding the difference.

        Returns
        -------
        DataFrame
            A copy with signs flipped (and the interval bounds swapped) when
            :attr:`sign` is −1; unchanged otherwise.
        """
        out = frame.copy()
        if self.sign == 1:
            return out
        out[value] = -out[value]
        if "ci_low" in out and "ci_high" in out:
            low, high = out["ci_low"].copy(), out["ci_high"].copy()
            out["ci_low"], out["ci_high"] = -high, -low
        return out

    def leaks(self, text: str) -> list[str]:
        """Return the real arm names that appear in `text` as words (for checks)."""
        return sorted({m.group(0).lower() for m in _arm_pattern(tuple(self.labels)).finditer(text)})


def _arm_pattern(arms: tuple[str, ...]) -> re.Pattern[str]:
    names = sorted({a for a in arms if a}, key=len, reverse=True)
    alternatives = "|".join(re.escape(a) for a in names) or r"(?!x)x"
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def _coded(index: int) -> str:
    letters = string.ascii_uppercase
    return f"Arm {letters[index]}" if index < len(letters) else f"Arm {index + 1}"


def arm_coding(
    *,
    trial: str,
    arms: Iterable[str],
    treated: str,
    control: str,
    unblind: bool,
) -> ArmCoding:
    """Build the arm labels of a report.

    Parameters
    ----------
    trial : str
        Trial name; its hash fixes the coding (stable from report to report).
    arms : iterable of str
        Arm names present in the data (the treated and control arms are added).
    treated, control : str
        Real names of the treated and the control arm.
    unblind : bool
        Show the real names.

    Returns
    -------
    ArmCoding
    """
    names = sorted({str(a) for a in arms} | {treated, control})
    if unblind:
        rest = [a for a in names if a not in (treated, control)]
        order = (treated, control, *rest)
        return ArmCoding(False, {a: a for a in names}, order, treated, control)

    def key(arm: str) -> str:
        return hashlib.sha256(f"{trial}\x00{arm}".encode()).hexdigest()

    ranked = sorted(names, key=key)
    labels = {arm: _coded(i) for i, arm in enumerate(ranked)}
    order = tuple(_coded(i) for i in range(len(ranked)))
    return ArmCoding(True, labels, order, treated, control)
