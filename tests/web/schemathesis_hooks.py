"""Hooks for the schemathesis run of tests/web/test_schemathesis.py, loaded by the
schemathesis process (``SCHEMATHESIS_HOOKS``).

Two reports of "schema-valid request rejected" are not findings:
- the refusal is a 422 problem whose type names a rule that JSON Schema cannot state: the
  password policy (``password-rejected``), or a rule such as a username's characters after
  normalization, an artist link that must match the role, or the last-admin guard
  (``invalid-request``). A schema-valid request refused as ``validation-error`` stays a
  finding: there the schema and the validation disagree;
- the request is not schema-valid at all: the stateful phase carried a null from a
  response (a session id of an audit event, say) into a path parameter through a link it
  inferred, and still counts the request as valid (schemathesis issue 2983).
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

RULE_PROBLEMS = {
    "urn:studio-auth:problem:password-rejected",
    "urn:studio-auth:problem:invalid-request",
}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the two above."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    if any(value is None for value in (case.path_parameters or {}).values()):
        return False
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    return not (isinstance(problem, dict) and problem.get("type") in RULE_PROBLEMS)
