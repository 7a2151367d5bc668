"""Per-process cache of the automatic hairs of done measurement runs.

A done run's ``hair`` rows are written once, in the transaction that marks the run done,
and never changed afterwards (a re-measurement is a new run with a new id), so they can
be kept in memory by run id without ever serving stale data. They are kept as JSON text
in the form a revision stores hairs (:func:`~hairtrial.store.reviews.stored_form`:
DESIGN.md JSON rounded to 0.01 px and 0.01 µm), which the review page's hair load sends
as is and a save based on the automatic result diffs against.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import pydantic_core
from sqlalchemy.orm import Session

from hairtrial.store.reviews import automatic_hairs, stored_form

#: Default bound on the cached JSON text, in characters (about as many bytes).
DEFAULT_MAX_CHARS = 32_000_000


class AutomaticHairsCache:
    """Least-recently-used cache of done runs' hairs, as JSON text, keyed by run id.

    One cache belongs to one app, hence to one database: run ids of other databases are
    never looked up in it. Safe to share between threads.

    Parameters
    ----------
    max_chars : int
        Bound on the JSON text kept, in characters; the least recently used runs are
        dropped first.
    """

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars: must be positive, got {max_chars}")
        self._max_chars = max_chars
        self._chars = 0
        self._runs: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def json(self, session: Session, run_id: int) -> str:
        """Return the JSON array of a done run's hairs in stored form.

        Parameters
        ----------
        session : Session
            Open session, used only when the run is not cached yet.
        run_id : int
            Id of a **done** measurement run (its hairs must never change).

        Returns
        -------
        str
            ``stored_form(automatic_hairs(...))`` as JSON text.
        """
        with self._lock:
            found = self._runs.get(run_id)
            if found is not None:
                self._runs.move_to_end(run_id)
                return found
        # Read outside the lock; two threads filling the same run store equal text.
        text = pydantic_core.to_json(
            stored_form(automatic_hairs(session=session, run_id=run_id))
        ).decode()
        with self._lock:
            if run_id not in self._runs and len(text) <= self._max_chars:
                self._runs[run_id] = text
                self._chars += len(text)
                while self._chars > self._max_chars:
                    self._chars -= len(self._runs.popitem(last=False)[1])
        return text

    def stored(self, session: Session, run_id: int) -> list[dict[str, Any]]:
        """Return a done run's hairs in stored form, parsed (a fresh copy).

        Matches :data:`hairtrial.store.reviews.AutomaticBase`, for
        :func:`~hairtrial.store.reviews.save_revision`.
        """
        hairs: list[dict[str, Any]] = pydantic_core.from_json(self.json(session, run_id))
        return hairs
