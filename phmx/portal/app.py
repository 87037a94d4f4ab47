"""The FastAPI application: server-rendered pages (Jinja2, autoescaped) and the JSON API.

Routes are thin: they parse the request, call :mod:`phmx.portal.views` or
:mod:`phmx.portal.intake` with the caller's organisation, and render. Who may call a route is
decided by :func:`phmx.portal.security.authorize` from :data:`phmx.portal.access.RULES`, for every
route, before the handler runs. Member ids travel only in POST bodies, never in a URL.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from phmx import settings as settings_mod
from phmx import storage
from phmx.errors import LedgerError, StorageError
from phmx.log import get_logger
from phmx.portal import decisions, intake, oidc, operations, statement, views
from phmx.portal.directory import Directory, Principal, Role
from phmx.portal.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    SSO_PREFIX,
    BodyLimit,
    LoginLimiter,
    NotSignedIn,
    SecurityHeaders,
    authorize,
    client_address,
    csrf_token,
    describe,
    is_api,
    principal_of,
    session_secret,
)

log = get_logger(__name__)
HERE = Path(__file__).resolve().parent
API = "/api/v1"
HOME_OF = {Role.SUBMITTER: "/submissions", Role.RECIPIENT: "/packages", Role.AUDITOR: "/audit",
           Role.OPERATOR: "/operations"}


class DisclosureQuery(BaseModel):
    """An accounting-of-disclosures request (a POST body: a member id never goes in a URL)."""

    member_id: str = Field(min_length=1, max_length=80, pattern=views.MEMBER_ID.pattern)
    since: date | None = None
    until: date | None = None


class WithdrawRequest(BaseModel):
    """Withdraw one period (YYYY-MM) of one of the caller's feeds."""

    feed: str = Field(min_length=1, max_length=80)
    period: str = Field(min_length=1, max_length=20)


class TriggerRequest(BaseModel):
    """Run the pipeline for one period (YYYY-MM) or every period (all)."""

    period: str = Field(pattern=operations.PERIOD.pattern)


class StatementQuery(BaseModel):
    """A member statement request (a POST body: a member id never goes in a URL)."""

    member_id: str = Field(min_length=1, max_length=80, pattern=views.MEMBER_ID.pattern)
    language: Literal["en", "es"] = "en"


async def _me(request: Request) -> Principal:
    """The caller, as :func:`phmx.portal.security.authorize` found it (async: no thread hop)."""
    principal: Principal = request.state.principal
    return principal


Me = Annotated[Principal, Depends(_me)]
Text = Annotated[str | None, Query(max_length=80)]  # a search field (recipient, purpose, rule id)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    from jobs.ingest.receipts import percent

    env.filters["percent"] = percent
    return env


def _dt(value: date | None) -> datetime | None:
    return datetime.combine(value, datetime.min.time()) if value else None


def create_app(portal: settings_mod.PortalSettings | None = None) -> FastAPI:
    """The portal application for the given settings (default: from the environment)."""
    ps = portal or settings_mod.load_portal()
    app = FastAPI(title="phmx portal", version="1", docs_url=None, redoc_url=None,
                  description="The hub's portal and API: submitters upload and read receipts, recipients download "
                              "packages, auditors verify the ledger and account for disclosures. Sign in with a "
                              "session (pages) or send `Authorization: Bearer <API token>`.",
                  dependencies=[Depends(authorize)])
    app.state.directory = Directory(ps.orgs_file, ps.users_file)
    app.state.limiter = LoginLimiter()
    app.state.settings = ps
    secret = session_secret(ps.secret_file)
    sso = oidc.client_from_settings(ps, app.state.directory.organisations, secret)
    app.state.oidc = sso
    env = _templates()
    env.globals["sso"] = sso is not None

    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE, same_site="strict", https_only=ps.tls)
    app.add_middleware(BodyLimit, max_bytes=ps.max_upload_bytes)
    app.add_middleware(SecurityHeaders, tls=ps.tls)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        principal = principal_of(request) if "session" in request.scope else None
        flash = request.session.pop("flash", None) if "session" in request.scope else None
        body = env.get_template(template).render(
            me=principal, csrf=csrf_token(request), flash=flash, home=HOME_OF, **ctx)
        return HTMLResponse(body, status_code=status)

    # ---- errors ---------------------------------------------------------------------------------
    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "sign in, or send an API token as Authorization: Bearer"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or request.url.path == "/openapi.json":
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return page(request, "error.html.j2", status=exc.status_code, status_code=exc.status_code, detail=exc.detail)

    @app.exception_handler(intake.UploadProblem)
    async def _upload_problem(request: Request, exc: intake.UploadProblem) -> Response:
        if is_api(request):
            return JSONResponse(exc.to_dict(), status_code=exc.status)
        request.session["flash"] = {"error": True, **exc.to_dict()}
        return RedirectResponse("/submissions", status_code=303)

    @app.exception_handler(LedgerError)
    async def _ledger_down(request: Request, exc: LedgerError) -> Response:
        log.error("portal: the access could not be recorded in the ledger; content withheld")
        detail = "the access could not be recorded in the audit ledger, so the content is withheld; retry later"
        if is_api(request):
            return JSONResponse({"detail": detail}, status_code=503)
        return page(request, "error.html.j2", status=503, status_code=503, detail=detail)

    def not_found() -> HTTPException:
        return HTTPException(404, "not found")

    # ---- public -----------------------------------------------------------------------------------
    @app.get("/healthz", name="healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", name="login_form", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return page(request, "login.html.j2")

    @app.post("/login", name="login", include_in_schema=False)
    def login(request: Request, username: Annotated[str, Form(max_length=128)],
              password: Annotated[str, Form(max_length=1024)],
              csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
        expected = request.session.get("csrf")
        if not expected or csrf_token_field != expected:
            return page(request, "login.html.j2", status=403, error="The form expired: please sign in again.")
        limiter: LoginLimiter = app.state.limiter
        address = client_address(request)
        wait = limiter.retry_after(username, address)
        if wait:
            resp = page(request, "login.html.j2", status=429,
                        error=f"Too many failed attempts: try again in {wait // 60 + 1} minutes.")
            resp.headers["Retry-After"] = str(wait)
            return resp
        principal = app.state.directory.authenticate(username, password)
        if principal is None:
            limiter.failed(username, address)
            log.info("portal: failed sign-in")
            return page(request, "login.html.j2", status=401, error="Wrong username or password.")
        limiter.succeeded(username)
        request.session.clear()  # a new session on sign-in (no fixation)
        request.session["user"] = principal.name
        csrf_token(request)
        return RedirectResponse("/", status_code=303)

    # ---- single sign-on (OpenID Connect; see phmx.portal.oidc) ----------------------------------------
    @app.get("/auth/oidc/login", name="oidc_login", include_in_schema=False)
    def oidc_login(request: Request) -> Response:
        if sso is None:
            raise not_found()
        try:
            url, flow = sso.start(str(request.base_url))
        except oidc.SignInRefused as exc:
            return page(request, "login.html.j2", status=503, error=str(exc))
        resp = RedirectResponse(url, status_code=303)
        resp.set_cookie(oidc.FLOW_COOKIE, flow, max_age=oidc.FLOW_MAX_AGE, path="/auth/oidc", httponly=True,
                        samesite="lax", secure=ps.tls)
        return resp

    @app.get(oidc.CALLBACK_PATH, name="oidc_callback", response_class=HTMLResponse, include_in_schema=False)
    def oidc_callback(request: Request) -> Response:
        if sso is None:
            raise not_found()
        params = {k: v for k, v in request.query_params.items() if k in ("code", "state", "iss", "error")}
        try:
            org, name, _ = sso.finish(base_url=str(request.base_url), params=params,
                                      cookie=request.cookies.get(oidc.FLOW_COOKIE))
        except oidc.SignInRefused as exc:
            log.info("portal: single sign-on refused")
            resp: Response = page(request, "login.html.j2", status=403, error=f"Single sign-on failed: {exc}.")
        else:
            request.session.clear()  # a new session on sign-in (no fixation)
            request.session["user"] = SSO_PREFIX + name
            request.session["org"] = org
            csrf_token(request)
            # A page, not a redirect: the browser arrives here from the identity provider's site, and
            # the session's SameSite=Strict cookie is sent on the next, same-site navigation.
            resp = page(request, "signed_in.html.j2")
        resp.delete_cookie(oidc.FLOW_COOKIE, path="/auth/oidc")
        return resp

    # ---- anyone signed in ---------------------------------------------------------------------------
    @app.get("/", name="home", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, who: Me) -> Response:
        return RedirectResponse(HOME_OF[who.role], status_code=303)

    @app.post("/logout", name="logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get(f"{API}/me", name="api_me", tags=["account"], summary="Who the caller is")
    def api_me(who: Me) -> dict[str, Any]:
        return describe(who)

    @app.get(f"{API}/keys/publish", name="api_publish_key", tags=["packages"],
             summary="The hub's published feed-signing public key(s) and fingerprint(s)")
    def api_publish_key() -> dict[str, Any]:
        return views.publish_key()

    # ---- submitters ---------------------------------------------------------------------------------
    @app.get("/submissions", name="submissions_page", response_class=HTMLResponse, include_in_schema=False)
    def submissions_page(request: Request, who: Me) -> HTMLResponse:
        from jobs.ingest.specs import load_specs

        specs = {f: s for f, s in load_specs().items() if s.accepts_submitter(who.organisation.submitter or "")}
        withdrawable = sorted(f for f, s in specs.items() if intake.withdrawable(s))
        return page(request, "submissions.html.j2", rows=views.submissions(who), feeds=sorted(specs),
                    withdrawable=withdrawable)

    @app.post("/submissions", name="upload_form", include_in_schema=False)
    def upload_form(request: Request, who: Me, feed: Annotated[str, Form(max_length=80)],
                    period: Annotated[str, Form(max_length=20)], file: Annotated[UploadFile, File()]) -> Response:
        landed = intake.land(who, feed=feed, period=period, filename=file.filename or "", fileobj=file.file)
        request.session["flash"] = {"error": False, "detail": f"Received {landed.name} for {landed.feed} "
                                    f"{landed.period} ({landed.size} bytes, SHA-256 {landed.sha256[:16]}...). "
                                    "Its receipt appears below after the next intake run."}
        return RedirectResponse("/submissions", status_code=303)

    @app.post("/submissions/withdraw", name="withdraw_form", include_in_schema=False)
    def withdraw_form(request: Request, who: Me, feed: Annotated[str, Form(max_length=80)],
                      period: Annotated[str, Form(max_length=20)],
                      confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
        if confirm != "yes":
            request.session["flash"] = {"error": True, "detail": "Nothing was withdrawn: tick the box to confirm."}
            return RedirectResponse("/submissions", status_code=303)
        landed = intake.withdraw(who, feed=feed, period=period)
        request.session["flash"] = {"error": False, "detail": f"Withdrawal of {landed.feed} {landed.period} received "
                                    f"({landed.name}). The next intake run replaces the period's records with none; "
                                    "its receipt appears below."}
        return RedirectResponse("/submissions", status_code=303)

    @app.post(f"{API}/submissions/withdraw", name="api_withdraw", status_code=201, tags=["submissions"],
              summary="Withdraw a period of a feed whose files replace each other (a header-only file is landed)",
              responses={409: {"description": "a withdrawal was already received this second"},
                         422: {"description": "not a feed of this submitter, not withdrawable, or a bad period"}})
    def api_withdraw(who: Me, body: WithdrawRequest) -> dict[str, Any]:
        return intake.withdraw(who, feed=body.feed, period=body.period).to_dict()

    @app.get("/submissions/{submission_id}", name="receipt_page", response_class=HTMLResponse,
             include_in_schema=False)
    def receipt_page(request: Request, who: Me, submission_id: str) -> HTMLResponse:
        r = views.receipt(who, submission_id)
        if r is None:
            raise not_found()
        return page(request, "receipt.html.j2", r=r, acks=views.acknowledgments(who, submission_id) or {})

    @app.post(f"{API}/submissions", name="api_submit", status_code=201, tags=["submissions"],
              summary="Upload a file into the caller's landing prefix",
              responses={409: {"description": "a file of that name was already received for the period"},
                         413: {"description": "larger than the upload limit"},
                         415: {"description": "not the feed's kind of file"},
                         422: {"description": "unknown feed for this submitter, bad period or file name"}})
    def api_submit(who: Me, feed: Annotated[str, Form(max_length=80)], period: Annotated[str, Form(max_length=20)],
                   file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        return intake.land(who, feed=feed, period=period, filename=file.filename or "", fileobj=file.file).to_dict()

    @app.get(f"{API}/submissions", name="api_submissions", tags=["submissions"],
             summary="The caller's submission history with per-rule error shares",
             response_model=list[dict[str, Any]])
    async def api_submissions(who: Me, feed: str | None = None, period: str | None = None) -> Response:
        # Serialised once per history rebuild (views.HISTORY_TTL_S), not per request; served on the
        # event loop (no thread hop): a rebuild is a folder listing and the new receipts' parse.
        return Response(views.submissions_json(who, feed=feed, period=period), media_type="application/json")

    @app.get(f"{API}/submissions/{{submission_id}}", name="api_receipt", tags=["submissions"],
             summary="The receipt of one of the caller's submissions")
    def api_receipt(who: Me, submission_id: str) -> dict[str, Any]:
        r = views.receipt(who, submission_id)
        if r is None:
            raise not_found()
        return r

    @app.get(f"{API}/submissions/{{submission_id}}/acknowledgments", name="api_acknowledgments",
             tags=["submissions"], summary="The HL7 ACK or X12 999/TA1 of one of the caller's submissions")
    def api_acknowledgments(who: Me, submission_id: str) -> dict[str, str]:
        acks = views.acknowledgments(who, submission_id)
        if acks is None:
            raise not_found()
        return acks

    # ---- recipients ---------------------------------------------------------------------------------
    @app.get("/packages", name="packages_page", response_class=HTMLResponse, include_in_schema=False)
    def packages_page(request: Request, who: Me) -> HTMLResponse:
        return page(request, "packages.html.j2", rows=views.packages(who), keys=views.publish_key()["keys"])

    @app.get("/packages/{feed}/{period}/{version}", name="package_page", response_class=HTMLResponse,
             include_in_schema=False)
    def package_page(request: Request, who: Me, feed: str, period: str, version: str) -> HTMLResponse:
        p = views.package(who, feed, period, version)
        if p is None:
            raise not_found()
        return page(request, "package.html.j2", p=p)

    def _download(who: Principal, feed: str, period: str, version: str, name: str) -> Response:
        found = views.package_file(who, feed, period, version, name)
        if found is None:
            raise not_found()
        where, sha = found
        views.record_access(who, action="download", resource={"feed": feed, "period": period, "version": version,
                                                                "file": name}, files=[(where, sha)])
        if storage.is_s3(where):  # streamed from the publish zone, never copied to this machine's disk
            return StreamingResponse(storage.iter_chunks(where), media_type="application/octet-stream",
                                     headers={"Content-Disposition": f'attachment; filename="{Path(name).name}"'})
        return FileResponse(where, filename=Path(name).name, media_type="application/octet-stream")

    @app.get("/packages/{feed}/{period}/{version}/files/{name:path}", name="package_file", include_in_schema=False)
    def package_file(who: Me, feed: str, period: str, version: str, name: str) -> Response:
        return _download(who, feed, period, version, name)

    @app.get(f"{API}/packages", name="api_packages", tags=["packages"], summary="The caller's packages")
    def api_packages(who: Me) -> list[dict[str, Any]]:
        return views.packages(who)

    @app.get(f"{API}/packages/{{feed}}/{{period}}/{{version}}", name="api_package", tags=["packages"],
             summary="One package version: files and verification result")
    def api_package(who: Me, feed: str, period: str, version: str) -> dict[str, Any]:
        p = views.package(who, feed, period, version)
        if p is None:
            raise not_found()
        return p

    @app.get(f"{API}/packages/{{feed}}/{{period}}/{{version}}/files/{{name:path}}", name="api_package_file",
             tags=["packages"], summary="Download one file of a package (recorded in the audit ledger)",
             response_class=FileResponse)
    def api_package_file(who: Me, feed: str, period: str, version: str, name: str) -> Response:
        return _download(who, feed, period, version, name)

    # ---- auditors -----------------------------------------------------------------------------------
    @app.get("/audit", name="audit_page", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, who: Me) -> HTMLResponse:
        return page(request, "audit.html.j2", status_doc=views.ledger_status(), rows=None, query=None)

    @app.post("/audit/disclosures", name="disclosures_page", response_class=HTMLResponse, include_in_schema=False)
    def disclosures_page(request: Request, who: Me, member_id: Annotated[str, Form(max_length=80)],
                         since: Annotated[str, Form()] = "", until: Annotated[str, Form()] = "") -> HTMLResponse:
        try:
            q = DisclosureQuery(member_id=member_id.strip(), since=since or None, until=until or None)  # type: ignore[arg-type]
        except ValueError:
            return page(request, "audit.html.j2", status=422, status_doc=views.ledger_status(), rows=None, query=None,
                        error="Enter a member id (letters, digits, . _ : -) and dates as YYYY-MM-DD.")
        rows = _disclosures(who, q)
        return page(request, "audit.html.j2", status_doc=views.ledger_status(), rows=rows, query=q)

    def _disclosures(who: Principal, q: DisclosureQuery) -> list[dict[str, Any]]:
        views.record_access(who, action="accounting_of_disclosures",
                            resource={"since": str(q.since or ""), "until": str(q.until or "")}, subject=q.member_id)
        return views.disclosures(q.member_id, since=_dt(q.since), until=_dt(q.until))

    @app.get(f"{API}/ledger/verify", name="api_ledger_verify", tags=["audit"],
             summary="Verify the ledger: hash chain, checkpoint signatures, disclosure digests, head")
    def api_ledger_verify() -> dict[str, Any]:
        return views.ledger_status()

    @app.post(f"{API}/disclosures", name="api_disclosures", tags=["audit"],
              summary="Accounting of disclosures for one member (the member id in the body; recorded)")
    def api_disclosures(who: Me, q: DisclosureQuery) -> list[dict[str, Any]]:
        return _disclosures(who, q)

    # ---- auditors: decision reports and search, with a drill-down per disclosure ----------------------
    def _search(recipient: str | None, purpose: str | None, rule: str | None, since: date | None,
                until: date | None) -> decisions.Search:
        def clean(v: str | None) -> str | None:
            v = (v or "").strip()
            return v if v and views.FEED_OR_PERIOD.match(v) else None
        return decisions.Search(clean(recipient), clean(purpose), clean(rule), since, until)

    def _day(value: str | None) -> date | None:
        try:
            return date.fromisoformat(value.strip()) if value and value.strip() else None
        except ValueError:
            return None

    @app.get("/audit/decisions", name="decisions_page", response_class=HTMLResponse, include_in_schema=False)
    def decisions_page(request: Request, recipient: Text = None, purpose: Text = None, rule: Text = None,
                       since: Text = None, until: Text = None) -> HTMLResponse:
        # A browser's form sends empty fields: an empty or unreadable date means "no bound" here.
        q = _search(recipient, purpose, rule, _day(since), _day(until))
        return page(request, "decisions.html.j2", q=q, counts=decisions.decision_counts(q),
                    rows=decisions.disclosures(q))

    @app.get("/audit/decisions/disclosures/{seq}", name="decision_disclosure_page", response_class=HTMLResponse,
             include_in_schema=False)
    def decision_disclosure_page(request: Request, who: Me, seq: Annotated[int, PathParam(ge=1, le=10**12)]) -> HTMLResponse:
        d = decisions.disclosure(seq)
        if d is None:
            raise not_found()
        views.record_access(who, action="disclosure_detail", resource={"seq": seq})
        return page(request, "decision_disclosure.html.j2", d=d)

    @app.get(f"{API}/audit/decisions", name="api_decisions", tags=["audit"],
             summary="Decisions in force (counts) and disclosures, searched by recipient, purpose, rule and date")
    def api_decisions(recipient: Text = None, purpose: Text = None, rule: Text = None, since: date | None = None,
                      until: date | None = None) -> dict[str, Any]:
        q = _search(recipient, purpose, rule, since, until)
        return {"decisions": decisions.decision_counts(q), "disclosures": decisions.disclosures(q)}

    @app.get(f"{API}/audit/disclosures/{{seq}}", name="api_disclosure_detail", tags=["audit"],
             summary="One disclosure in full: files, rules and what they cite, consents and why cited, rows by class")
    def api_disclosure_detail(who: Me, seq: Annotated[int, PathParam(ge=1, le=10**12)]) -> dict[str, Any]:
        d = decisions.disclosure(seq)
        if d is None:
            raise not_found()
        views.record_access(who, action="disclosure_detail", resource={"seq": seq})
        return d

    # ---- operators: runs and stages through Airflow's REST API, triggering a run, quarantine ---------
    airflow = operations.Airflow(ps.airflow_url, ps.airflow_user, ps.airflow_password_file)
    app.state.airflow = airflow

    def _unavailable(exc: operations.AirflowUnavailable) -> HTTPException:
        log.warning("portal: Airflow unavailable")
        return HTTPException(503, str(exc))

    def _stages(run_id: str) -> list[dict[str, Any]]:
        """One run's stages for the page and the API: 503 when Airflow cannot be reached, 404 when
        it has no such run."""
        try:
            stages: list[dict[str, Any]] | None = app.state.airflow.stages(run_id)
        except operations.AirflowUnavailable as exc:
            raise _unavailable(exc) from None
        if stages is None:
            raise not_found()
        return stages

    @app.get("/operations", name="operations_page", response_class=HTMLResponse, include_in_schema=False)
    def operations_page(request: Request, who: Me) -> HTMLResponse:
        try:
            runs, problem = app.state.airflow.runs(), None
        except operations.AirflowUnavailable as exc:
            runs, problem = [], str(exc)
        return page(request, "operator.html.j2", runs=runs, problem=problem,
                    quarantine=operations.quarantine_summary())

    @app.get("/operations/runs/{run_id}", name="run_page", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        return page(request, "run.html.j2", run_id=run_id, stages=_stages(run_id))

    @app.post("/operations/runs", name="trigger_form", include_in_schema=False)
    def trigger_form(request: Request, who: Me, period: Annotated[str, Form(max_length=7)]) -> Response:
        period = period.strip()
        if not operations.PERIOD.match(period):
            request.session["flash"] = {"error": True, "detail": "The period is YYYY-MM (for example 2026-01) or all."}
            return RedirectResponse("/operations", status_code=303)
        try:
            run_id = _trigger(who, period)
        except operations.AirflowUnavailable as exc:
            request.session["flash"] = {"error": True, "detail": f"The run was not started: {exc}."}
            return RedirectResponse("/operations", status_code=303)
        request.session["flash"] = {"error": False, "detail": f"Run {run_id} queued for period {period}."}
        return RedirectResponse("/operations", status_code=303)

    def _trigger(who: Principal, period: str) -> str:
        run_id: str = app.state.airflow.trigger(period)
        log.info("portal: pipeline run triggered")
        views.record_access(who, action="trigger_run", resource={"period": period, "run_id": run_id})
        return run_id

    @app.get(f"{API}/operations/runs", name="api_runs", tags=["operations"],
             summary="The pipeline's newest runs (through Airflow's REST API)",
             responses={503: {"description": "Airflow cannot be reached"}})
    def api_runs() -> list[dict[str, Any]]:
        try:
            runs: list[dict[str, Any]] = app.state.airflow.runs()
        except operations.AirflowUnavailable as exc:
            raise _unavailable(exc) from None
        return runs

    @app.get(f"{API}/operations/runs/{{run_id}}", name="api_run", tags=["operations"],
             summary="One run's stages and their states", responses={503: {"description": "Airflow cannot be reached"}})
    def api_run(run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "stages": _stages(run_id)}

    @app.post(f"{API}/operations/runs", name="api_trigger_run", status_code=201, tags=["operations"],
              summary="Trigger a pipeline run for a period (YYYY-MM or all)",
              responses={503: {"description": "Airflow cannot be reached"}})
    def api_trigger_run(who: Me, body: TriggerRequest) -> dict[str, str]:
        try:
            return {"run_id": _trigger(who, body.period), "period": body.period}
        except operations.AirflowUnavailable as exc:
            raise _unavailable(exc) from None

    @app.get(f"{API}/operations/quarantine", name="api_quarantine", tags=["operations"],
             summary="Quarantined rows counted by submitter, feed, period and rule")
    def api_quarantine(period: Annotated[str | None, Query(pattern=operations.PERIOD.pattern)] = None,
                       ) -> list[dict[str, Any]]:
        return operations.quarantine_summary(period if period != "all" else None)

    # ---- auditors and operators: a member's statement of how their data were used -------------------
    def _statement(who: Principal, q: StatementQuery, fmt: str) -> statement.Statement:
        views.record_access(who, action="member_statement", resource={"language": q.language, "format": fmt},
                            subject=q.member_id)
        d: Directory = app.state.directory
        names = {**{o.submitter: o.name for o in d.organisations.values() if o.submitter and o.name},
                 **{o.recipient: o.name for o in d.organisations.values() if o.recipient and o.name}}
        by = f"{who.name} ({who.organisation.name or who.organisation.id})"
        return statement.build(q.member_id, q.language, prepared_by=by, recipient_names=names)

    def _statement_form(member_id: str, language: str) -> StatementQuery | None:
        try:
            return StatementQuery(member_id=member_id.strip(), language=language)  # type: ignore[arg-type]
        except ValueError:
            return None

    def _pdf(s: statement.Statement) -> Response:
        name = f"member-statement-{s.language}-{s.generated_at:%Y%m%d}.pdf"
        return Response(statement.render_pdf(s), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    bad_statement = "Enter a member id (letters, digits, . _ : -) and choose English or Spanish."

    @app.get("/statements", name="statement_form", response_class=HTMLResponse, include_in_schema=False)
    def statement_form(request: Request) -> HTMLResponse:
        return page(request, "statement.html.j2", s=None)

    @app.post("/statements", name="statement_page", response_class=HTMLResponse, include_in_schema=False)
    def statement_page(request: Request, who: Me, member_id: Annotated[str, Form(max_length=80)],
                       language: Annotated[str, Form(max_length=5)] = "en") -> HTMLResponse:
        q = _statement_form(member_id, language)
        if q is None:
            return page(request, "statement.html.j2", status=422, s=None, error=bad_statement)
        s = _statement(who, q, "html")
        return page(request, "statement.html.j2", s=s, t=s.text)

    @app.post("/statements/pdf", name="statement_pdf", include_in_schema=False)
    def statement_pdf(request: Request, who: Me, member_id: Annotated[str, Form(max_length=80)],
                      language: Annotated[str, Form(max_length=5)] = "en") -> Response:
        q = _statement_form(member_id, language)
        if q is None:
            return page(request, "statement.html.j2", status=422, s=None, error=bad_statement)
        return _pdf(_statement(who, q, "pdf"))

    @app.post(f"{API}/statements", name="api_statement", tags=["audit"],
              summary="A member's statement of how their data were used: disclosures and consents in force "
                      "(the member id in the body; recorded)")
    def api_statement(who: Me, q: StatementQuery) -> dict[str, Any]:
        return _statement(who, q, "json").to_dict()

    @app.post(f"{API}/statements/pdf", name="api_statement_pdf", tags=["audit"],
              summary="The member's statement as PDF, in English or Spanish (the member id in the body; recorded)",
              response_class=Response,
              responses={200: {"content": {"application/pdf": {}}, "description": "the statement as PDF"}})
    def api_statement_pdf(who: Me, q: StatementQuery) -> Response:
        return _pdf(_statement(who, q, "pdf"))

    @app.exception_handler(StorageError)
    async def _storage_down(request: Request, exc: StorageError) -> Response:
        log.error("portal: storage error %s", type(exc).__name__)
        detail = "the hub's storage could not be reached; retry later"
        if is_api(request):
            return JSONResponse({"detail": detail}, status_code=503)
        return page(request, "error.html.j2", status=503, status_code=503, detail=detail)

    return app
