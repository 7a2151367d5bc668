"""Sessions, CSRF tokens and login rate limiting (in memory, one server process).

Sessions are server-side: the cookie holds only a random 256-bit id, a new one is made at
every login (no session fixation) and dropped at logout. Each session has its own CSRF
token, checked with a constant-time comparison on every form post and API write. Failed
logins are counted per user name and per client address in a sliding window.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

#: Name of the session cookie.
SESSION_COOKIE = "hairtrial_session"
#: Name of the pre-login cookie carrying the login form's CSRF token.
LOGIN_COOKIE = "hairtrial_login"
#: Header carrying the CSRF token on API writes.
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class WebSession:
    """One logged-in session: its user, CSRF token and last use (monotonic seconds)."""

    user_id: int
    csrf: str
    last_seen: float = field(default_factory=time.monotonic)


class SessionStore:
    """Server-side sessions keyed by random ids, expiring after `ttl_s` idle seconds."""

    def __init__(self, *, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def create(self, user_id: int) -> tuple[str, WebSession]:
        """Start a new session for `user_id`; return its id and the session."""
        sid = secrets.token_urlsafe(32)
        session = WebSession(user_id=user_id, csrf=secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> WebSession | None:
        """Return the live session `sid` (refreshing its idle timer), or ``None``."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.last_seen > self._ttl:
                del self._sessions[sid]
                return None
            session.last_seen = now
            return session

    def drop(self, sid: str | None) -> None:
        """End session `sid` (no error if it does not exist)."""
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def drop_user(self, user_id: int) -> None:
        """End every session of one user (e.g. when the user is disabled)."""
        with self._lock:
            for sid in [s for s, v in self._sessions.items() if v.user_id == user_id]:
                del self._sessions[sid]


class LoginThrottle:
    """Refuse logins after `max_failures` failures within `window_s` for a key."""

    def __init__(self, *, max_failures: int, window_s: float) -> None:
        self._max = max_failures
        self._window = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self._window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        """Whether any of `keys` has reached the failure limit."""
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self._max for k in keys)

    def failed(self, *keys: str) -> None:
        """Record one failed attempt for each of `keys`."""
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of `keys`."""
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


def same_token(given: str | None, expected: str | None) -> bool:
    """Compare two tokens in constant time; missing tokens never match."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_token() -> str:
    """Return a fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)
