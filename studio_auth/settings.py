"""One settings object, read from the environment and validated on start."""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property, lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///studio_auth.db"


class Settings(BaseSettings):
    """Every knob of studio-auth. Environment variables use the ``STUDIO_AUTH_`` prefix,
    except ``DATABASE_URL``."""

    model_config = SettingsConfigDict(env_prefix="STUDIO_AUTH_", extra="ignore", frozen=True)

    env: Literal["production", "development", "test"] = "production"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "STUDIO_AUTH_DATABASE_URL"),
    )
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)

    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    bcrypt_max_rounds: int = Field(default=16, ge=4, le=20)

    session_idle_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    session_lifetime_hours: int = Field(default=12, ge=1, le=24 * 90)
    session_touch_seconds: int = Field(default=60, ge=0, le=3600)

    throttle_free_failures: int = Field(default=5, ge=1, le=1000)
    throttle_base_delay_seconds: float = Field(default=2.0, gt=0, le=3600)
    throttle_max_delay_seconds: float = Field(default=900.0, gt=0, le=86_400)
    throttle_ip_max_failures: int = Field(default=50, ge=1, le=1_000_000)
    throttle_ip_window_seconds: int = Field(default=900, ge=1, le=86_400)

    elevation_minutes: int = Field(default=5, ge=1, le=30)

    # The secret key (see services/keys.py): base64url of 32 random bytes. Without it, a
    # SQLite database gets a key file beside it; other databases need it set.
    secret_key: SecretStr | None = None
    previous_secret_keys: SecretStr | None = None
    secret_key_file: str | None = None

    password_min_length: int = Field(default=12, ge=8, le=64)
    studio_name: str = Field(default="", max_length=200)
    # The studio's time zone (an IANA name): how the console shows times.
    time_zone: str = Field(default="UTC", max_length=64)
    # A studio's own permission policy (TOML, same format as services/policy.toml).
    policy_file: str | None = None

    # The HTTP service. Password checks (bcrypt) run on at most ``password_workers``
    # threads with at most ``password_queue`` more waiting; beyond that a request gets 503
    # at once instead of piling up threads and memory.
    password_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    password_queue: int = Field(default=4, ge=0, le=10_000)
    # Each sign-in attempt is first counted by the throttle, on ``throttle_workers``
    # threads (default: 1 on SQLite, which has one writer at a time; 4 otherwise) with at
    # most ``throttle_queue`` attempts waiting; beyond that a request gets 503 at once.
    throttle_workers: int | None = Field(default=None, ge=1, le=64)
    throttle_queue: int = Field(default=64, ge=0, le=10_000)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Comma-separated addresses or networks whose X-Forwarded-For is believed.
    trusted_proxies: str = Field(default="", max_length=4000)
    # What ``studio-auth serve`` logs (audit events: INFO, failures and denials: WARNING).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _url_parses(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        # Messages never repeat the URL: it may hold a password.
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; expected e.g. sqlite:///studio_auth.db or "
                "postgresql+psycopg://user@host/dbname"
            ) from None
        try:
            url.get_dialect()
        except ArgumentError:
            raise ValueError(
                f"unknown database kind {url.drivername!r}; expected sqlite or postgresql+psycopg"
            ) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"not an address or network: {item.strip()!r}") from None
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Paris"
            ) from None
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        )

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.bcrypt_max_rounds < self.bcrypt_rounds:
            raise ValueError("STUDIO_AUTH_BCRYPT_MAX_ROUNDS must be >= STUDIO_AUTH_BCRYPT_ROUNDS")
        if self.env == "production" and self.bcrypt_rounds < 10:
            raise ValueError(
                "STUDIO_AUTH_BCRYPT_ROUNDS below 10 is refused outside development/test"
            )
        if self.throttle_max_delay_seconds < self.throttle_base_delay_seconds:
            raise ValueError("throttle max delay must be >= base delay")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings so the next call re-reads the environment (tests, CLI)."""
    get_settings.cache_clear()
