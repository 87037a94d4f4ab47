"""Single sign-on against a real OpenID Provider on 127.0.0.1: panva's oidc-provider (OpenID
Certified) under Node.js, installed by ``make oidc`` (pinned in tests/portal/oidc/package-lock.json).

The provider's own sign-in and consent pages are driven over HTTP; the portal redeems the code
with PKCE and its client secret, and verifies the ID token against the provider's JWKS. The
refusals: a callback in another browser (no flow cookie), a changed state, an answer claiming
another issuer, an account mapped to no organisation or to two; and the ID token checks (alg,
kid, signature, iss, aud, exp, nonce) with tokens the test signs itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from portal_world import write_directory

from phmx.errors import ConfigError

HERE = Path(__file__).resolve().parent / "oidc"
PORTAL = "http://testserver"
CLIENT_ID, CLIENT_SECRET = "phmx-portal", "test-only-client-secret-0123456789"
ACCOUNTS = {
    "eve.sso@audit.example": {"email": "eve.sso@audit.example", "groups": ["phmx-state-audit"]},
    "ann.sso@cair2.example": {"email": "ann.sso@cair2.example", "groups": []},
    "stray@elsewhere.example": {"email": "stray@elsewhere.example", "groups": ["unrelated"]},
    "both@cair2.example": {"email": "both@cair2.example", "groups": ["phmx-state-audit"]},
}
MAPPING = {"username_claim": "email", "rules": [
    {"claim": "groups", "equals": "phmx-state-audit", "organisation": "state_audit"},
    {"claim": "email", "suffix": "@cair2.example", "organisation": "cair2"},
]}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The OpenID Provider on an ephemeral loopback port; yields its issuer. It exits when its stdin closes."""
    node = shutil.which("node")
    assert node, "Node.js is missing (the machine's JavaScript toolchain)"
    assert (HERE / "node_modules" / "oidc-provider").is_dir(), "run `make oidc` (make test does it)"
    conf = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{PORTAL}/auth/oidc/callback"], "accounts": ACCOUNTS}
    proc = subprocess.Popen([node, str(HERE / "provider.mjs"), json.dumps(conf)], cwd=HERE, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the OpenID Provider did not start"
        yield json.loads(line)["issuer"]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def sso(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A portal configured for single sign-on with the provider."""
    from phmx import settings
    from phmx.portal.app import create_app

    home = tmp_path_factory.mktemp("sso") / "var"
    home.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("PHMX_HOME", str(home))
    for var in ("PHMX_PORTAL_ORGS", "PHMX_PORTAL_USERS", "PHMX_PORTAL_SECRET_FILE", "PHMX_KEYS_DIR",
                "PHMX_PORTAL_OIDC_ISSUER", "PHMX_PORTAL_OIDC_CLIENT_ID", "PHMX_PORTAL_OIDC_MAPPING"):
        mp.delenv(var, raising=False)
    try:
        write_directory(home)
        (home / "portal" / "oidc.yaml").write_text(yaml.safe_dump(MAPPING))
        secret = home / "keys" / "portal-oidc-client.secret"
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text(CLIENT_SECRET + "\n")
        mp.setenv("PHMX_PORTAL_OIDC_ISSUER", provider)
        mp.setenv("PHMX_PORTAL_OIDC_CLIENT_ID", CLIENT_ID)
        mp.setenv("PHMX_PORTAL_OIDC_SCOPES", "openid email groups")
        yield create_app(settings.load_portal())
    finally:
        mp.undo()


def _at_provider(auth_url: str, login: str) -> str:
    """Sign in and consent on the provider's own pages; return the URL it sends the browser back to."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        r = browser.get(auth_url)
        for _ in range(12):
            if r.status_code in (302, 303):
                target = urljoin(str(r.url), r.headers["location"])
                if target.startswith(PORTAL):
                    return target
                r = browser.get(target)
                continue
            assert r.status_code == 200, r.text[:300]
            action = re.search(r'<form[^>]*action="([^"]+)"', r.text)
            prompt = re.search(r'name="prompt" value="(\w+)"', r.text)
            assert action and prompt, r.text[:300]
            data = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                data |= {"login": login, "password": "the provider's own check"}
            r = browser.post(urljoin(str(r.url), action.group(1)), data=data)
        raise AssertionError("the provider never sent the browser back")


def _start(client: TestClient) -> str:
    r = client.get("/auth/oidc/login", follow_redirects=False)
    assert r.status_code == 303
    flow = r.headers["set-cookie"].lower()
    assert flow.startswith("phmx_oidc=") and "httponly" in flow and "samesite=lax" in flow and "path=/auth/oidc" in flow
    return str(r.headers["location"])


def test_an_auditor_signs_in_through_the_provider_with_pkce_state_and_nonce(sso: Any, provider: str):
    c = TestClient(sso)
    assert "single sign-on" in c.get("/login").text
    auth_url = _start(c)
    q = {k: v[0] for k, v in parse_qs(urlparse(auth_url).query).items()}
    assert auth_url.startswith(provider + "/")
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID and q["code_challenge_method"] == "S256"
    assert set(q["scope"].split()) == {"openid", "email", "groups"} and len(q["state"]) >= 32 and len(q["nonce"]) >= 32
    assert q["redirect_uri"] == f"{PORTAL}/auth/oidc/callback" and "code_verifier" not in q
    assert q["state"] not in str(c.cookies.get("phmx_oidc"))  # signed and compressed, not readable state
    back = _at_provider(auth_url, "eve.sso@audit.example")
    got = {k: v[0] for k, v in parse_qs(urlparse(back).query).items()}
    assert got["state"] == q["state"] and got["iss"] == provider and got["code"]
    page = c.get(back)
    assert page.status_code == 200 and 'http-equiv="refresh"' in page.text
    assert "signed in as eve.sso@audit.example for State Privacy Office" in page.text
    me = c.get("/api/v1/me").json()
    assert (me["name"], me["organisation"], me["role"]) == ("eve.sso@audit.example", "state_audit", "auditor")
    assert c.get("/audit").status_code == 200 and c.get("/submissions").status_code == 403
    # The code is spent: the same answer again (the flow cookie is gone, too) signs nobody in.
    again = TestClient(sso).get(back)
    assert again.status_code == 403 and "Single sign-on failed" in again.text


def test_a_submitter_is_mapped_by_email_domain_and_the_callback_is_bound_to_its_browser(sso: Any):
    mine, other = TestClient(sso), TestClient(sso)
    back = _at_provider(_start(mine), "ann.sso@cair2.example")
    # The answer opened in another browser (a login CSRF) is refused: that browser started no sign-in.
    stolen = other.get(back)
    assert stolen.status_code == 403 and "not started here" in stolen.text
    assert other.get("/api/v1/me").status_code == 401
    assert mine.get(back).status_code == 200
    assert mine.get("/api/v1/me").json()["organisation"] == "cair2"


def test_a_changed_state_or_another_issuer_is_refused(sso: Any):
    c = TestClient(sso)
    back = _at_provider(_start(c), "eve.sso@audit.example")
    changed = re.sub(r"state=[^&]+", "state=forged", back)
    r = c.get(changed)
    assert r.status_code == 403 and "(state)" in r.text and c.get("/api/v1/me").status_code == 401
    c2 = TestClient(sso)
    back2 = _at_provider(_start(c2), "eve.sso@audit.example")
    r2 = c2.get(re.sub(r"iss=[^&]+", "iss=http%3A%2F%2F127.0.0.1%3A1", back2))
    assert r2.status_code == 403 and "another identity provider" in r2.text


@pytest.mark.parametrize(("login", "why"), [("stray@elsewhere.example", "not linked to any organisation"),
                                            ("both@cair2.example", "more than one organisation")])
def test_an_account_mapped_to_no_organisation_or_to_two_is_refused(sso: Any, login: str, why: str):
    c = TestClient(sso)
    r = c.get(_at_provider(_start(c), login))
    assert r.status_code == 403 and why in r.text and login not in r.text
    assert c.get("/api/v1/me").status_code == 401


def _token(key: Any, *, kid: str = "k1", alg: str = "RS256", **over: Any) -> str:  # noqa: ANN401
    now = int(time.time())
    claims = {"iss": "https://idp.example", "sub": "s1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
              "nonce": "n-1", **over}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


def test_the_id_token_checks_refuse_every_bad_token(sso: Any):
    from phmx.portal.oidc import SignInRefused, verify_id_token

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = {"k1": key.public_key()}
    ok = {"keys": keys, "issuer": "https://idp.example", "client_id": CLIENT_ID, "nonce": "n-1",
          "algorithms": ["RS256"]}
    assert verify_id_token(_token(key), **ok)["sub"] == "s1"
    bad = {
        "another key": _token(stranger),
        "unknown kid": _token(key, kid="k9"),
        "another issuer": _token(key, iss="https://evil.example"),
        "another audience": _token(key, aud="someone-else"),
        "several audiences, azp not us": _token(key, aud=[CLIENT_ID, "other"], azp="other"),
        "expired": _token(key, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "no exp": _token(key, exp=None),
        "a replayed nonce": _token(key, nonce="n-0"),
        "no nonce": _token(key, nonce=None),
        "HMAC with the client secret": _token(CLIENT_SECRET.encode(), alg="HS256"),
        "alg none": jwt.encode({"iss": "https://idp.example", "sub": "s1", "aud": CLIENT_ID, "nonce": "n-1",
                                "iat": int(time.time()), "exp": int(time.time()) + 60}, None, algorithm="none"),
        "not a JWT": "not.a.token",
    }
    passed = []
    for why, token in bad.items():
        try:
            verify_id_token(token, **ok)
            passed.append(why)
        except SignInRefused:
            pass
    assert not passed, passed
    # A token signed by a stranger under the provider's real key id, checked against its real JWKS.
    client = sso.state.oidc
    real_keys = client._jwks()
    kid = next(iter(real_keys))
    with pytest.raises(SignInRefused, match="signature"):
        verify_id_token(_token(stranger, kid=kid, iss=client.issuer), keys=real_keys, issuer=client.issuer,
                        client_id=CLIENT_ID, nonce="n-1", algorithms=["RS256"])
    assert hashlib.sha256(CLIENT_SECRET.encode()).hexdigest() not in json.dumps(client.metadata())


def test_a_wrong_configuration_stops_the_portal_with_the_setting_named(sso: Any, tmp_path: Path):
    from phmx import settings
    from phmx.portal.app import create_app

    ps = settings.load_portal()
    with pytest.raises(ConfigError, match="PHMX_PORTAL_OIDC_CLIENT_ID"):
        create_app(dataclasses.replace(ps, oidc_issuer="https://idp.example", oidc_client_id=None))
    bad_map = tmp_path / "oidc.yaml"
    bad_map.write_text(yaml.safe_dump({"rules": [{"claim": "groups", "equals": "x", "organisation": "nobody"}]}))
    with pytest.raises(ConfigError, match=r"rules\[0\].organisation"):
        create_app(dataclasses.replace(ps, oidc_issuer="https://idp.example", oidc_client_id=CLIENT_ID,
                                       oidc_mapping_file=str(bad_map)))
    with pytest.raises(ConfigError, match="not https"):
        create_app(dataclasses.replace(ps, oidc_issuer="http://idp.example", oidc_client_id=CLIENT_ID))
