"""The project's exceptions. The web layer maps them to problem responses, the CLI to exit
codes; messages never contain a password, a token or a hash."""

from __future__ import annotations


class AuthError(Exception):
    """Root of every error studio-auth raises on purpose."""


class InvalidCredentials(AuthError):
    """Unknown user, wrong password or inactive account: one error, on purpose."""

    def __init__(self) -> None:
        super().__init__("invalid username or password")


class Throttled(AuthError):
    """Too many failed attempts; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(-(-retry_after // 1)))
        super().__init__(f"too many failed attempts; retry after {self.retry_after} s")


class Unavailable(AuthError):
    """A store the decision depends on failed; access is denied rather than guessed."""


class PermissionDenied(AuthError):
    """The user's role does not allow the action."""

    def __init__(self, action: str, reason: str = "not permitted") -> None:
        self.action = action
        self.reason = reason
        super().__init__(f"{action}: {reason}")


class PasswordRejected(AuthError):
    """A new password breaks the password policy; ``reasons`` says why."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("password rejected: " + "; ".join(self.reasons))


class UserExists(AuthError):
    """The username (after normalization) is taken."""

    def __init__(self, username: str) -> None:
        super().__init__(f"user already exists: {username}")


class NotFound(AuthError):
    """The user, artist or session named does not exist."""


class InvalidRequest(AuthError):
    """The request is well formed but not allowed by a rule (a guard or a validation)."""
