"""The authorisation matrix: every route of the application x every kind of caller -> status.

The routes come from the application's own route table, so a route added without a rule in
``phmx.portal.access.RULES`` (or without a sample request here) fails this test. The expected
status is worked out from the rule, the caller's organisation and whether the object asked for
is that organisation's (another's answers 404, like a missing one); the response is then checked
against a real request through the whole application (middleware, sessions, CSRF, handlers).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from portal_world import CORPUS, World
from starlette.routing import Mount, Route

from phmx.portal.access import RULES
from phmx.portal.directory import Role, Scope

ORG_ROLE = {"cair2": Role.SUBMITTER, "alpha_plan": Role.SUBMITTER, "lhj_alameda": Role.RECIPIENT,
            "lhj_butte": Role.RECIPIENT, "state_audit": Role.AUDITOR, "hub_ops": Role.OPERATOR}
# (organisation, scopes) of each test token
TOKENS = {"submit": ("cair2", {Scope.SUBMIT}), "read": ("lhj_alameda", {Scope.READ})}
OWNER = {"submission_id": "cair2", "feed": "lhj_alameda"}  # whose object a path parameter names
PUBLIC_STATUS = {"login_form": 200, "login": 422, "healthz": 200, "openapi": 200, "static": 200,
                 "oidc_login": 404, "oidc_callback": 404}  # single sign-on is not configured in this world
# No Airflow runs in this world: its pages say so (the list page shows the problem; a trigger comes
# back with a message), its API answers 503. tests/portal/test_operations.py runs them against Airflow.
AIRFLOW_DOWN = {"run_page": 503, "api_runs": 503, "api_run": 503, "api_trigger_run": 503, "trigger_form": 303}
SUCCESS = {"api_submit": 201, "upload_form": 303, "logout": 303, "home": 303, "withdraw_form": 303,
           "api_withdraw": 422}  # the sample feed (HL7) cannot be withdrawn: the refusal, after the access check
VXU = (CORPUS / "hl7v2_vxu" / "mcir_dtap.hl7").read_bytes()


def _routes(app: Any) -> list[tuple[str, str, str]]:
    """(name, method, path) for every route the application serves."""
    out = []
    for r in app.routes:
        if isinstance(r, Mount):
            out.append((r.name, "GET", r.path + "/portal.css"))
        elif isinstance(r, Route):
            out.extend((r.name, m, r.path) for m in sorted(r.methods or ()) if m in ("GET", "POST", "PUT",
                                                                                       "PATCH", "DELETE"))
    return out


def _expected(name: str, path: str, actor: str) -> int:
    rule = RULES[name]
    if rule.public:
        return PUBLIC_STATUS[name]
    api = path.startswith("/api/")
    if actor == "anon":
        return 401 if api else 303
    kind, _, who = actor.partition(":")
    org, scopes = TOKENS[who] if kind == "token" else (who, set(Scope))
    if kind == "token" and (rule.scope is None or rule.scope not in scopes):
        return 403
    if ORG_ROLE[org] not in rule.roles:
        return 403
    owners = {owner for param, owner in OWNER.items() if "{" + param + "}" in path}
    if owners and org not in owners:
        return 404
    if name in ("api_submit", "upload_form") and org != "cair2":
        return 422 if api else 303  # not a feed this organisation sends (the page shows it as a message)
    if name in AIRFLOW_DOWN:
        return AIRFLOW_DOWN[name]
    return SUCCESS.get(name, 200)


def _request(world: World, name: str, method: str, path: str, actor: str, n: int) -> Any:
    feed, period, version = world.package
    url = path.replace(":path}", "}").format(submission_id=world.submission_id, feed=feed, period=period, version=version,
                      name="measures.csv", seq=world.disclosure_seq, run_id="manual__2026-01-01T00:00:00+00:00")
    kind, _, who = actor.partition(":")
    headers: dict[str, str] = {}
    if kind == "user":
        client = world.signed_in(who)
        csrf = world.csrf[who]
        headers["X-CSRF-Token"] = csrf
    else:
        client, csrf = TestClient(world.app), ""
        if kind == "token":
            headers["Authorization"] = f"Bearer {world.tokens[who]}"
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if name in ("api_submit", "upload_form"):
        kwargs["data"] = {"feed": "immunizations_vxu", "period": "2026-03", "csrf_token": csrf}
        kwargs["files"] = {"file": (f"matrix_{n}.hl7", VXU)}
    elif name == "disclosures_page":
        kwargs["data"] = {"member_id": "M-MATRIX", "csrf_token": csrf}
    elif name == "api_disclosures":
        kwargs["json"] = {"member_id": "M-MATRIX"}
    elif name in ("statement_page", "statement_pdf"):
        kwargs["data"] = {"member_id": "M-MATRIX", "language": "es", "csrf_token": csrf}
    elif name in ("api_statement", "api_statement_pdf"):
        kwargs["json"] = {"member_id": "M-MATRIX", "language": "en"}
    elif name == "withdraw_form":
        kwargs["data"] = {"feed": "immunizations_vxu", "period": "2026-03", "confirm": "yes", "csrf_token": csrf}
    elif name == "api_withdraw":
        kwargs["json"] = {"feed": "immunizations_vxu", "period": "2026-03"}
    elif name == "trigger_form":
        kwargs["data"] = {"period": "2026-01", "csrf_token": csrf}
    elif name == "api_trigger_run":
        kwargs["json"] = {"period": "2026-01"}
    elif name in ("logout",):
        kwargs["data"] = {"csrf_token": csrf}
    return client.request(method, url, **kwargs)


@pytest.mark.slow
def test_every_route_answers_every_caller_as_its_rule_says(world: World):
    routes = _routes(world.app)
    unruled = sorted({n for n, _, _ in routes} - set(RULES))
    assert not unruled, f"routes without an access rule in phmx.portal.access.RULES: {unruled}"
    assert {n for n, _, _ in routes} == set(RULES), "rules for routes that no longer exist"
    actors = ["anon", *(f"user:{o}" for o in ORG_ROLE), *(f"token:{t}" for t in TOKENS)]
    wrong = []
    n = 0
    for name, method, path in routes:
        for actor in actors:
            n += 1
            want = _expected(name, path, actor)
            got = _request(world, name, method, path, actor, n)
            if got.status_code != want:
                wrong.append(f"{method} {path} as {actor}: {got.status_code}, expected {want}: {got.text[:120]}")
            if name == "logout" and actor.startswith("user:"):
                world.forget(actor.partition(":")[2])
    assert not wrong, "\n".join(wrong)
    assert n >= 25 * len(actors)


def test_a_route_without_a_rule_is_closed_to_everyone(world: World):
    from portal_world import login

    from phmx import settings
    from phmx.portal.app import create_app

    app = create_app(settings.load_portal())

    @app.get("/api/v1/forgotten", name="forgotten_route")
    def forgotten() -> dict[str, str]:
        return {"leak": "yes"}

    c = TestClient(app)
    assert login(c, "eve@audit").status_code == 303
    assert c.get("/api/v1/forgotten").status_code == 403
    assert TestClient(app).get("/api/v1/forgotten").status_code == 403
