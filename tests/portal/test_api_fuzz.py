"""The API fuzzed from its own OpenAPI document (schemathesis): no request answers 5xx.

Every operation of ``/openapi.json`` gets generated requests (path and query parameters, JSON and
multipart bodies, valid and invalid) sent through the whole application, as a caller whose role
may use the route (so the handlers run, not only the access check), and with no credentials at
all. The number of examples per operation is bounded so the run stays within a minute or two.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from portal_world import World
from schemathesis.checks import not_a_server_error
from starlette.routing import Route

from phmx.portal.access import RULES
from phmx.portal.directory import Role, Scope

ORG_OF = {Role.SUBMITTER: "cair2", Role.RECIPIENT: "lhj_alameda", Role.AUDITOR: "state_audit",
          Role.OPERATOR: "hub_ops"}
ROLE_ORDER = (Role.SUBMITTER, Role.RECIPIENT, Role.AUDITOR, Role.OPERATOR)


@pytest.fixture(scope="module")
def fuzz_app(world: World) -> dict[str, Any]:
    """A fresh application over the world's hub with one read+submit token per organisation kind."""
    from phmx import settings as phmx_settings
    from phmx.portal.app import create_app
    from phmx.portal.directory import add_token

    ps = phmx_settings.load_portal()
    tokens = {role: add_token(ps.orgs_file, ps.users_file, organisation=org, scopes=[Scope.SUBMIT, Scope.READ])
              for role, org in ORG_OF.items()}
    app = create_app(ps)
    names = {}
    for r in app.routes:
        if isinstance(r, Route):
            for m in r.methods or ():
                names[(m, r.path.replace(":path}", "}"))] = r.name
    return {"app": app, "tokens": tokens, "names": names}


# No Airflow runs in this world: these answer 503 "Airflow cannot be reached" (a dependency down,
# not a fault of the portal); every other 5xx fails.
AIRFLOW_ROUTES = {"api_runs", "api_run", "api_trigger_run"}


def _fuzz(op: Any, name: str, public: bool, headers: dict[str, str]) -> int:  # noqa: ANN401 - an APIOperation
    """Bounded generated requests to one operation: as an allowed caller, then without credentials.
    Returns how many statuses the allowed caller got, by class (to show the handlers ran)."""
    statuses: list[int] = []

    @given(case=op.as_strategy())
    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:  # noqa: ANN401 - a schemathesis Case
        if name in AIRFLOW_ROUTES:
            r = case.call(headers=headers)
            assert r.status_code < 500 or (r.status_code == 503 and "Airflow" in r.text), (name, r.status_code)
            statuses.append(r.status_code)
        else:
            statuses.append(case.call_and_validate(headers=headers, checks=[not_a_server_error]).status_code)
        # The same request without credentials is refused, never a server error either.
        anonymous = case.call()
        assert anonymous.status_code < 500, (name, anonymous.status_code)
        if not public:
            assert anonymous.status_code == 401, (name, anonymous.status_code)

    fuzz()
    return len(statuses)


@pytest.mark.slow
def test_no_request_to_the_api_answers_a_server_error(fuzz_app: dict[str, Any]):
    # Operations are walked here rather than through schemathesis' pytest plugin, whose lazy
    # fixture loading does not run under this pytest; each operation gets its own Hypothesis run.
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app["app"])
    seen, failures, sent = [], [], 0
    for result in schema.get_all_operations():
        op = result.ok()
        name = fuzz_app["names"][(op.method.upper(), op.path)]
        rule = RULES[name]
        role = next((r for r in ROLE_ORDER if r in rule.roles), None)
        headers = {"Authorization": f"Bearer {fuzz_app['tokens'][role]}"} if role else {}
        seen.append(name)

        try:
            sent += _fuzz(op, name, rule.public, headers)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then fail once
            failures.append(f"{name}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
    assert sent >= 3 * len(seen), sent  # generated requests reached every operation
    api_routes = {n for (_, p), n in fuzz_app["names"].items() if p.startswith("/api/")}
    assert set(seen) == api_routes, sorted(api_routes - set(seen))
