"""All tables, imported here so ``Base.metadata`` is complete."""

from data.models.artist import Artist
from data.models.audit import AuditEvent
from data.models.session import AuthSession
from data.models.throttle import ThrottleCounter
from data.models.user import Role, User, normalize_username

__all__ = [
    "Artist",
    "AuditEvent",
    "AuthSession",
    "Role",
    "ThrottleCounter",
    "User",
    "normalize_username",
]
