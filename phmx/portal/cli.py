"""``phmx serve`` (the portal) and ``phmx portal add-user | add-token | openapi``.

``serve`` binds 127.0.0.1 unless told otherwise; binding another address without TLS is refused
(set ``PHMX_PORTAL_TLS=1`` when a TLS proxy fronts the portal). Accounts are added by the hub's
operators on the hub's machine: ``add-user`` reads the password from the terminal (or one line of
standard input with ``--password-stdin``) and stores only its argon2id hash; ``add-token`` prints
a new API token once and stores only its SHA-256.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from phmx.errors import ConfigError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def register(subparsers: Any) -> None:
    """Add ``serve`` and ``portal`` to the phmx command."""
    s = subparsers.add_parser("serve", help="run the web portal and API (127.0.0.1 by default)",
                              description="Serve the portal and its JSON API with uvicorn.")
    s.add_argument("--host", default=None, help="bind address (default PHMX_PORTAL_HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default PHMX_PORTAL_PORT or 8470)")
    s.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("portal", help="portal accounts, API tokens and the OpenAPI document")
    sub = p.add_subparsers(dest="portal_command", required=True)
    u = sub.add_parser("add-user", help="add an account (or reset its password)")
    u.add_argument("--org", required=True, help="organisation id from the organisations file")
    u.add_argument("--username", required=True)
    u.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    u.set_defaults(func=cmd_add_user)
    t = sub.add_parser("add-token", help="create an API token for machine submission (printed once)")
    t.add_argument("--org", required=True)
    t.add_argument("--scope", action="append", choices=("submit", "read"), default=None,
                   help="what the token may do (repeatable; default: submit and read)")
    t.set_defaults(func=cmd_add_token)
    o = sub.add_parser("openapi", help="write the API's OpenAPI document")
    o.add_argument("--out", default="-", help="file to write (default: standard output)")
    o.set_defaults(func=cmd_openapi)


def cmd_serve(args: argparse.Namespace) -> int:
    import dataclasses

    import uvicorn

    from phmx import settings
    from phmx.portal.app import create_app

    ps = settings.load_portal()
    ps = dataclasses.replace(ps, host=args.host or ps.host, port=args.port or ps.port)
    if ps.host not in LOOPBACK and not ps.tls:
        raise ConfigError(f"refusing to serve on {ps.host} without TLS",
                          hint="put the portal behind a TLS proxy and set PHMX_PORTAL_TLS=1, or bind 127.0.0.1")
    if not Path(ps.orgs_file).is_file():
        raise ConfigError(f"no organisations file at {ps.orgs_file}",
                          hint="write it (see docs/portal-guide.md) or set PHMX_PORTAL_ORGS")
    app = create_app(ps)
    sys.stderr.write(f"phmx portal on http{'s' if ps.tls else ''}://{ps.host}:{ps.port}/\n")
    uvicorn.run(app, host=ps.host, port=ps.port, proxy_headers=ps.tls, server_header=False, log_level="info")
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    from phmx import settings
    from phmx.portal.directory import add_user

    ps = settings.load_portal()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    add_user(ps.orgs_file, ps.users_file, username=args.username, organisation=args.org, password=password)
    sys.stdout.write(f"account {args.username} ({args.org}) saved in {ps.users_file}\n")
    return 0


def cmd_add_token(args: argparse.Namespace) -> int:
    from phmx import settings
    from phmx.portal.directory import Scope, add_token

    ps = settings.load_portal()
    scopes = [Scope(s) for s in (args.scope or ["submit", "read"])]
    token = add_token(ps.orgs_file, ps.users_file, organisation=args.org, scopes=scopes)
    sys.stderr.write("the token is shown once; store it in your secret store\n")
    sys.stdout.write(token + "\n")
    return 0


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, independent of any deployment's files."""
    import tempfile

    from phmx import settings
    from phmx.portal.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        ps = settings.PortalSettings(host="127.0.0.1", port=0, orgs_file=str(Path(tmp, "o.yaml")),
                                     users_file=str(Path(tmp, "u.yaml")), secret_file=str(Path(tmp, "s.key")),
                                     tls=False, max_upload_bytes=1)
        return create_app(ps).openapi()


def cmd_openapi(args: argparse.Namespace) -> int:
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0
