"""Single sign-on through the state's identity provider: OpenID Connect, authorization code flow.

Configured by settings (``PHMX_PORTAL_OIDC_*``): the issuer, the portal's client id and secret
(in a 0600 file), the scopes, and a mapping file that says which ID token claims put a person in
which organisation (rules as data, :class:`Mapping`). The flow:

1. ``/auth/oidc/login`` makes a fresh ``state``, ``nonce`` and PKCE ``code_verifier`` (S256),
   keeps them in a signed, HttpOnly, ten-minute cookie of their own (SameSite=Lax, because the
   provider sends the browser back from another site, where the session's Strict cookie is not
   sent), and redirects to the provider's authorization endpoint (from its discovery document,
   whose ``issuer`` must equal the configured one).
2. ``/auth/oidc/callback`` checks ``state`` (constant time) and, when the provider sends it, the
   ``iss`` parameter (RFC 9207), redeems the code at the token endpoint with the client secret
   and the verifier, and verifies the ID token (:func:`verify_id_token`): signature by a key of
   the provider's JWKS (by ``kid``; an algorithm the provider announces, never ``none`` or HMAC),
   ``iss``, ``aud`` (and ``azp`` when there are several audiences), ``exp``, ``iat`` and the
   ``nonce``. The claims are mapped to exactly one organisation, or the sign-in is refused.

The person's role is their organisation's kind, exactly as for local accounts; the session holds
the organisation id and a display name (the ``username_claim``), never a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import yaml
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from phmx.errors import ConfigError
from phmx.portal.directory import Organisation
from phmx.settings import PortalSettings

FLOW_COOKIE = "phmx_oidc"
FLOW_MAX_AGE = 600
CALLBACK_PATH = "/auth/oidc/callback"
# Asymmetric signatures only: "none" and HMAC (keyed with the client secret) are never accepted.
ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_S = 60
HTTP_TIMEOUT_S = 10.0


class SignInRefused(Exception):
    """The sign-in cannot complete; ``str()`` is safe to show (no token, no claim values)."""


class Rule(BaseModel):
    """One mapping rule: a claim equal to (or, for a list claim, containing) ``equals``, or a
    string claim ending in ``suffix``, puts the person in ``organisation``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim: str
    equals: str | None = None
    suffix: str | None = None
    organisation: str

    @model_validator(mode="after")
    def _one_test(self) -> Rule:
        if (self.equals is None) == (self.suffix is None):
            raise ValueError("give exactly one of `equals` or `suffix`")
        return self

    def matches(self, claims: dict[str, Any]) -> bool:
        value = claims.get(self.claim)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str):
                continue
            if self.equals is not None and v == self.equals:
                return True
            if self.suffix is not None and v.lower().endswith(self.suffix.lower()):
                return True
        return False


class Mapping(BaseModel):
    """The mapping file: which claim names the person, and the rules (all are tried; a person
    must land in exactly one organisation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username_claim: str = "email"
    rules: list[Rule]

    @classmethod
    def load(cls, path: str, organisations: dict[str, Organisation]) -> Mapping:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{path}: the OpenID Connect mapping file is missing",
                              hint="write the claim -> organisation rules there (see docs/portal-guide.md), "
                                   "or set PHMX_PORTAL_OIDC_MAPPING")
        try:
            doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            mapping = cls.model_validate(doc)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML", hint=str(exc).splitlines()[0]) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            raise ConfigError(f"{path}: {where}: {err['msg']}", hint="fix that entry of the mapping") from None
        for i, r in enumerate(mapping.rules):
            if r.organisation not in organisations:
                raise ConfigError(f"{path}: rules[{i}].organisation: {r.organisation!r} is not an organisation",
                                  hint="add it to the organisations file or fix the rule")
        return mapping

    def organisation_for(self, claims: dict[str, Any]) -> str:
        found = sorted({r.organisation for r in self.rules if r.matches(claims)})
        if not found:
            raise SignInRefused("your account is not linked to any organisation of the hub: ask the hub's "
                                "operators to add you to the right group at the identity provider")
        if len(found) > 1:
            raise SignInRefused("your account matches more than one organisation of the hub, so the portal cannot "
                                "tell which one you act for: ask the hub's operators to fix the groups")
        return found[0]


@dataclass(frozen=True)
class Flow:
    """What the login step remembers for the callback (in the signed flow cookie)."""

    state: str
    nonce: str
    verifier: str


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def verify_id_token(token: str, *, keys: dict[str, Any], issuer: str, client_id: str, nonce: str,
                    algorithms: list[str]) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce check out.

    ``keys`` maps ``kid`` to a PyJWT key (from the provider's JWKS). Raises :class:`SignInRefused`.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SignInRefused("the identity provider's answer was not a valid ID token") from None
    alg = header.get("alg")
    if alg not in algorithms:
        raise SignInRefused("the ID token is signed with an algorithm the portal does not accept")
    key = keys.get(str(header.get("kid"))) if header.get("kid") is not None else (
        next(iter(keys.values())) if len(keys) == 1 else None)
    if key is None:
        raise SignInRefused("the ID token is signed by a key the identity provider does not publish")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key, algorithms=[alg], audience=client_id, issuer=issuer, leeway=LEEWAY_S,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise SignInRefused("the ID token has expired: sign in again") from None
    except jwt.InvalidAudienceError:
        raise SignInRefused("the ID token was issued for another application") from None
    except jwt.InvalidIssuerError:
        raise SignInRefused("the ID token comes from another issuer than the configured one") from None
    except jwt.PyJWTError:
        raise SignInRefused("the ID token's signature or claims do not verify") from None
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise SignInRefused("the ID token was issued for another application")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise SignInRefused("the ID token does not answer this sign-in (nonce): sign in again")
    return claims


class Client:
    """The portal as an OpenID Connect relying party of one provider."""

    def __init__(self, *, issuer: str, client_id: str, client_secret: str, scopes: str, mapping: Mapping,
                 session_secret: str, redirect_url: str | None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id, self._secret = client_id, client_secret
        self.scopes = " ".join(["openid", *[s for s in scopes.split() if s != "openid"]])
        self.mapping = mapping
        self.redirect_url = redirect_url
        self._signer = URLSafeTimedSerializer(session_secret, salt="phmx-oidc-flow")
        self._meta: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}
        self._keys_at = 0.0
        self._lock = threading.Lock()

    # ---- provider metadata and keys ------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                try:
                    r = httpx.get(url, timeout=HTTP_TIMEOUT_S)
                    r.raise_for_status()
                    meta = r.json()
                except (httpx.HTTPError, ValueError):
                    raise SignInRefused("the identity provider cannot be reached: try again later") from None
                if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                    raise SignInRefused("the identity provider's discovery document names another issuer")
                self._meta = meta
            return self._meta

    def _jwks(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            fresh = time.monotonic() - self._keys_at < 300
        if self._keys and fresh and not refresh:
            return self._keys
        try:
            r = httpx.get(self.metadata()["jwks_uri"], timeout=HTTP_TIMEOUT_S)
            r.raise_for_status()
            keys = {}
            for jwk in r.json().get("keys", []):
                if jwk.get("use", "sig") != "sig":
                    continue
                keys[str(jwk.get("kid"))] = jwt.PyJWK(jwk).key
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError):
            raise SignInRefused("the identity provider's signing keys cannot be read: try again later") from None
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    def _algorithms(self) -> list[str]:
        offered = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        return [a for a in offered if a in ALLOWED_ALGS]

    # ---- the flow -------------------------------------------------------------------------------
    def callback_url(self, base_url: str) -> str:
        return self.redirect_url or base_url.rstrip("/") + CALLBACK_PATH

    def start(self, base_url: str) -> tuple[str, str]:
        """(the provider URL to send the browser to, the signed flow cookie value)."""
        flow = Flow(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64))
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.callback_url(base_url),
                  "scope": self.scopes, "state": flow.state, "nonce": flow.nonce,
                  "code_challenge": _challenge(flow.verifier), "code_challenge_method": "S256"}
        url = f"{self.metadata()['authorization_endpoint']}?{urlencode(params)}"
        return url, self._signer.dumps([flow.state, flow.nonce, flow.verifier])

    def _flow(self, cookie: str | None) -> Flow:
        if not cookie:
            raise SignInRefused("the sign-in was not started here or took longer than ten minutes: sign in again")
        try:
            state, nonce, verifier = self._signer.loads(cookie, max_age=FLOW_MAX_AGE)
        except (BadSignature, ValueError):
            raise SignInRefused("the sign-in was not started here or took longer than ten minutes: "
                                "sign in again") from None
        return Flow(str(state), str(nonce), str(verifier))

    def finish(self, *, base_url: str, params: dict[str, str], cookie: str | None) -> tuple[str, str, dict[str, Any]]:
        """Complete a callback: (organisation id, display name, verified claims)."""
        flow = self._flow(cookie)
        if "error" in params:
            raise SignInRefused("the identity provider did not sign you in"
                                + (": access denied" if params["error"] == "access_denied" else ""))
        state, code = params.get("state", ""), params.get("code", "")
        if not state or not hmac.compare_digest(state, flow.state):
            raise SignInRefused("the sign-in answer does not belong to this browser's sign-in (state): sign in again")
        if "iss" in params and params["iss"].rstrip("/") != self.issuer:
            raise SignInRefused("the sign-in answer comes from another identity provider")
        if not code:
            raise SignInRefused("the identity provider sent no authorization code")
        try:
            r = httpx.post(self.metadata()["token_endpoint"], timeout=HTTP_TIMEOUT_S,
                           auth=(self.client_id, self._secret),
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": self.callback_url(base_url), "code_verifier": flow.verifier})
        except httpx.HTTPError:
            raise SignInRefused("the identity provider cannot be reached: try again later") from None
        if r.status_code != 200:
            raise SignInRefused("the identity provider refused the authorization code (used, expired or not "
                                "this portal's): sign in again")
        try:
            id_token = str(r.json()["id_token"])
        except (ValueError, KeyError):
            raise SignInRefused("the identity provider returned no ID token") from None
        verify = {"issuer": self.issuer, "client_id": self.client_id, "nonce": flow.nonce,
                  "algorithms": self._algorithms()}
        try:
            claims = verify_id_token(id_token, keys=self._jwks(), **verify)  # type: ignore[arg-type]
        except SignInRefused:
            # The provider may have rotated its keys since they were read: read them once more.
            claims = verify_id_token(id_token, keys=self._jwks(refresh=True), **verify)  # type: ignore[arg-type]
        org = self.mapping.organisation_for(claims)
        name = claims.get(self.mapping.username_claim)
        return org, str(name) if isinstance(name, str) and name else f"sub:{claims['sub']}", claims


def client_from_settings(ps: PortalSettings, organisations: dict[str, Organisation],
                         session_secret: str) -> Client | None:
    """The configured client, or None when ``PHMX_PORTAL_OIDC_ISSUER`` is unset."""
    if not ps.oidc_issuer:
        return None
    if not ps.oidc_client_id:
        raise ConfigError("PHMX_PORTAL_OIDC_ISSUER is set but PHMX_PORTAL_OIDC_CLIENT_ID is not",
                          hint="set the client id the identity provider registered for the portal")
    secret_path = Path(ps.oidc_client_secret_file)
    if not secret_path.is_file():
        raise ConfigError(f"{secret_path}: the OpenID Connect client secret file is missing",
                          hint="write the client secret there (mode 0600) or set PHMX_PORTAL_OIDC_CLIENT_SECRET_FILE")
    secret = secret_path.read_text(encoding="utf-8").strip()
    if not secret:
        raise ConfigError(f"{secret_path}: the OpenID Connect client secret file is empty")
    if not ps.oidc_issuer.startswith("https://") and not ps.oidc_issuer.startswith(("http://127.0.0.1", "http://localhost")):
        raise ConfigError(f"PHMX_PORTAL_OIDC_ISSUER {ps.oidc_issuer!r} is not https",
                          hint="an identity provider is reached over TLS (plain http only on loopback, for tests)")
    mapping = Mapping.load(ps.oidc_mapping_file, organisations)
    return Client(issuer=ps.oidc_issuer, client_id=ps.oidc_client_id, client_secret=secret, scopes=ps.oidc_scopes,
                  mapping=mapping, session_secret=session_secret, redirect_url=ps.oidc_redirect_url)
