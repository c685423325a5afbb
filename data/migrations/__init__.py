"""Alembic migrations: the only way the schema is made or changed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` that needs no ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation treats '%' specially.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def has_schema(engine: Engine) -> bool:
    """True when any migration has been applied to ``engine``'s database."""
    with engine.connect() as connection:
        return bool(MigrationContext.configure(connection).get_current_heads())


def is_current(engine: Engine) -> bool:
    """True when the database is at this code's newest revision(s), or at revisions this
    code does not know: a newer release's, applied before its code replaces this one
    (migrations only add until a later release; see docs/deployment.md)."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    return current == set(script.get_heads()) or (bool(current) and not current & known)
