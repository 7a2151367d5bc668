"""Settings of the web app: one pydantic-settings class behind a cached getter.

Values come from keyword arguments or ``HAIRTRIAL_*`` environment variables. Unsafe
defaults are refused outside development: a missing secret key (used to key subject
pseudonyms) or debug mode is an error unless ``environment`` is ``development``, where a
random per-process key is generated.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Web-app settings (environment variables ``HAIRTRIAL_<NAME>``).

    Parameters
    ----------
    db_url : str
        Trial database URL.
    image_root : Path, optional
        Image store folder (default: next to a SQLite database).
    secret_key : SecretStr
        Secret that keys subject pseudonyms; required outside development.
    environment : {'development', 'test', 'production'}
        Where the app runs.
    debug : bool
        Debug mode (development only).
    cookie_secure : bool
        Send the session cookie over HTTPS only (turn off only for plain-HTTP loopback).
    session_ttl_s : float, s
        Idle session lifetime.
    login_max_failures : int
        Failed logins allowed per user name and per client within `login_window_s`.
    login_window_s : float, s
        Rate-limiting window.
    report_path : Path, optional
        Trial report file linked from the dashboard when it exists.
    """

    model_config = SettingsConfigDict(env_prefix="HAIRTRIAL_", extra="forbid")

    db_url: str = "sqlite:///trial.db"
    image_root: Path | None = None
    secret_key: SecretStr | None = None
    environment: Literal["development", "test", "production"] = "production"
    debug: bool = False
    cookie_secure: bool = True
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    report_path: Path | None = None

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.environment != "development":
            if self.debug:
                raise ValueError("debug: only allowed when environment is 'development'")
            if self.secret_key is None or len(self.secret_key.get_secret_value()) < 16:
                raise ValueError(
                    "secret_key: set HAIRTRIAL_SECRET_KEY (at least 16 characters) outside "
                    "development"
                )
        elif self.secret_key is None:
            self.secret_key = SecretStr(secrets.token_urlsafe(32))
        return self

    @property
    def key(self) -> str:
        """The secret key's value."""
        assert self.secret_key is not None  # set by the validator
        return self.secret_key.get_secret_value()


@lru_cache
def get_settings() -> Settings:
    """Return the settings read from the environment (built once, on first use)."""
    return Settings()
