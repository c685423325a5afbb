"""The Audit page: the trail, newest first, filtered and paged, and its CSV export
(the ``audit.view`` permission)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import AuditEvent, User
from services import audit
from services.sessions import SessionInfo
from studio_auth.web.console.browser import signed_in
from studio_auth.web.console.forms import Form
from studio_auth.web.console.pages import ConsoleRoute, render
from studio_auth.web.deps import SessionFactory, require_permission
from studio_auth.web.schemas import NAME_MAX

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

Auditor = Annotated[SessionInfo, Depends(require_permission("audit.view", signed_in))]

PAGE_SIZE = 50
MAX_PAGE = 10_000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such cells are written with a leading apostrophe, which makes them text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filters:
    """The Audit page's filters, as read from its query string."""

    user: str
    event: str
    start: date | None
    end: date | None
    page: int

    def query(self, **changes: Any) -> str:
        values = {
            "user": self.user,
            "event": self.event,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            "page": self.page,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


def _day(text: str, field: str, form: Form) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        form.fail(field, "Enter a date as year-month-day, for example 2026-03-31")
        return None


def read_filters(request: Request) -> tuple[Filters, Form]:
    """The filters in the query string; the form's errors say which could not be read."""
    form = Form(request.query_params)
    page_text = form.text("page")
    page = int(page_text) if page_text.isdigit() and len(page_text) < 6 else 1
    filters = Filters(
        user=form.text("user", limit=NAME_MAX),
        event=form.text("event", limit=64),
        start=_day(form.text("from"), "from", form),
        end=_day(form.text("to"), "to", form),
        page=max(1, min(page, MAX_PAGE)),
    )
    if filters.start and filters.end and filters.end < filters.start:
        form.fail("to", "The end date must be the same as or after the start date")
    return filters, form


def _bounds(request: Request, filters: Filters) -> tuple[datetime | None, datetime | None]:
    """The filters' days as instants: from the start of the first day to the end of the
    last, in the studio's time zone."""
    zone = request.app.state.settings.zone
    since = datetime.combine(filters.start, time(), zone) if filters.start else None
    until = datetime.combine(filters.end + timedelta(days=1), time(), zone) if filters.end else None
    return since, until


def _events(
    db: Session, request: Request, filters: Filters, *, limit: int, offset: int
) -> list[AuditEvent]:
    since, until = _bounds(request, filters)
    return audit.list_events(
        db,
        username=filters.user or None,
        event=filters.event or None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


def _names(db: Session, events: list[AuditEvent]) -> dict[int, str]:
    """The usernames of the accounts the events name, by id (one query)."""
    ids = {e.user_id for e in events} | {e.actor_id for e in events}
    ids.discard(None)
    if not ids:
        return {}
    rows = db.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {row.id: row.username for row in rows}


@router.get("/audit-trail")
def audit_trail(request: Request, auditor: Auditor, factory: SessionFactory) -> Response:
    filters, form = read_filters(request)
    events: list[AuditEvent] = []
    with factory() as db:
        types = audit.event_types(db)
        if not form.errors:
            offset = (filters.page - 1) * PAGE_SIZE
            events = _events(db, request, filters, limit=PAGE_SIZE + 1, offset=offset)
        names = _names(db, events)
    return render(
        request,
        "audit_trail.html",
        {
            "events": events[:PAGE_SIZE],
            "names": names,
            "types": types,
            "filters": filters,
            "errors": form.errors,
            "newer": filters.query(page=filters.page - 1) if filters.page > 1 else None,
            "older": filters.query(page=filters.page + 1) if len(events) > PAGE_SIZE else None,
            "export": filters.query(page=1),
        },
        viewer=auditor,
        status_code=422 if form.errors else 200,
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


CSV_COLUMNS = (
    "id",
    "at",
    "event",
    "outcome",
    "user_id",
    "username",
    "actor_id",
    "client_ip",
    "session_id",
    "detail",
)


def _csv_rows(events: list[AuditEvent]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        detail = json.dumps(e.detail or {}, ensure_ascii=False, sort_keys=True)
        writer.writerow(
            [
                _cell(v)
                for v in (
                    e.id,
                    e.at.isoformat(),
                    e.event,
                    e.outcome,
                    e.user_id,
                    e.username,
                    e.actor_id,
                    e.client_ip,
                    e.session_id,
                    detail,
                )
            ]
        )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if not events:
        yield out.getvalue()


@router.get("/audit-trail/export.csv")
def export_csv(request: Request, auditor: Auditor, factory: SessionFactory) -> Response:
    """Every event the filters match (at most the trail's list limit), newest first, as
    CSV in UTC, whatever page the filters were on."""
    filters, form = read_filters(request)
    if form.errors:
        return audit_trail(request, auditor, factory)
    with factory() as db:
        events = _events(db, request, filters, limit=audit.MAX_LIST_LIMIT, offset=0)
    return StreamingResponse(
        _csv_rows(events),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-trail.csv"'},
    )
