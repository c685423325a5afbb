"""/audit: the audit trail, newest first (the ``audit.view`` permission)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from data.db.base import DB_ID_MAX
from services import audit
from services.sessions import SessionInfo
from studio_auth.web.deps import Db, require_permission
from studio_auth.web.errors import problem_responses
from studio_auth.web.json_route import JsonRoute
from studio_auth.web.schemas import NAME_MAX, AuditEventOut, DateTime

router = APIRouter(tags=["audit"], route_class=JsonRoute)

Auditor = Annotated[SessionInfo, Depends(require_permission("audit.view"))]
# Event and outcome names are lower-case identifiers; anything else cannot match.
_NAME_PATTERN = r"^[a-z_]{1,64}$"


@router.get(
    "/audit",
    response_model=list[AuditEventOut],
    responses=problem_responses(401, 403, 422, 503),
    summary="Audit events matching every filter given, newest first",
)
def list_audit_events(
    _auditor: Auditor,
    db: Db,
    user_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
    username: Annotated[str | None, Query(min_length=1, max_length=NAME_MAX)] = None,
    event: Annotated[str | None, Query(pattern=_NAME_PATTERN)] = None,
    outcome: Annotated[str | None, Query(pattern=_NAME_PATTERN)] = None,
    since: Annotated[DateTime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIST_LIMIT)] = 100,
) -> list[AuditEventOut]:
    events = audit.list_events(
        db,
        user_id=user_id,
        username=username,
        event=event,
        outcome=outcome,
        since=since,
        limit=limit,
    )
    return [
        AuditEventOut(
            id=e.id,
            at=e.at,
            event=e.event,
            outcome=e.outcome,
            user_id=e.user_id,
            actor_id=e.actor_id,
            username=e.username,
            client_ip=e.client_ip,
            session_id=e.session_id,
            detail=e.detail or {},
        )
        for e in events
    ]
