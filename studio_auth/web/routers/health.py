"""/healthz (the process answers) and /readyz (the database answers and is migrated)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data.migrations import is_current
from studio_auth.web.errors import UNAVAILABLE_RETRY_AFTER, problem, problem_responses
from studio_auth.web.json_route import JsonRoute
from studio_auth.web.schemas import HealthResponse

router = APIRouter(tags=["health"], route_class=JsonRoute)


@router.get("/healthz", response_model=HealthResponse, summary="The process is up")
async def healthz() -> HealthResponse:
    # Async: a liveness probe touches nothing that blocks, so it costs no thread hop.
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses=problem_responses(503),
    summary="The database is reachable and its migrations are current",
)
def readyz(request: Request) -> HealthResponse | JSONResponse:
    engine: Engine = request.app.state.engine
    try:
        current = is_current(engine)
    except SQLAlchemyError:
        return _not_ready("the database is unreachable")
    if not current:
        return _not_ready("the database schema is not at the current migration")
    return HealthResponse(status="ready")


def _not_ready(detail: str) -> JSONResponse:
    return problem(
        "not-ready",
        "Not ready",
        503,
        detail,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )
