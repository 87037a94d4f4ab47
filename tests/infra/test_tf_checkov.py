"""checkov 3.1.47 over infra/terraform, offline: no failed check, every skip written down with a reason.

checkov is run once per module (fixture) with the settings that keep it off the network:
--skip-download (no external modules, no platform policy download), BC_SKIP_MAPPING=TRUE, no API key,
CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false; and its import-time "new version on PyPI?" check (the
update_checker package) is replaced by a stub, since no switch turns it off. The whole run takes
about 5 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tf_layout import REPO, TF_ROOT

# checkov's own entry point (.venv/bin/checkov) with the PyPI update check stubbed out.
RUNNER = """
import sys, warnings
import checkov.common.version_manager as vm
vm.check_for_update = lambda package, version: None
from checkov.main import Checkov
sys.argv = ["checkov", *sys.argv[1:]]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=SyntaxWarning)
    sys.exit(Checkov().run())
"""

OFFLINE_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "CKV_VALIDATE_SECRETS": "false",
    "CHECKOV_NO_OUTPUT": "false",
}

# The checks a regression here would most likely break: each must be evaluated and pass.
KEY_CHECKS = {
    "CKV_AWS_7": "KMS key rotation",
    "CKV_AWS_21": "S3 versioning",
    "CKV_AWS_145": "S3 default encryption with KMS",
    "CKV2_AWS_6": "S3 public access block",
    "CKV_AWS_18": "S3 access logging",
    "CKV2_AWS_61": "S3 lifecycle configuration",
    "CKV_AWS_300": "abort incomplete multipart uploads",
    "CKV_AWS_35": "CloudTrail encrypted with KMS",
    "CKV_AWS_36": "CloudTrail log file validation",
    "CKV2_AWS_10": "CloudTrail to CloudWatch Logs",
    "CKV2_AWS_11": "VPC flow logs",
    "CKV2_AWS_12": "default security group restricts all traffic",
    "CKV_AWS_158": "CloudWatch log group encrypted with KMS",
    "CKV_AWS_60": "IAM role trust not open to everyone",
}


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_API", "PRISMA_", "CKV_", "CHECKOV_"))}
    env.update(OFFLINE_ENV)
    env["HOME"] = str(tmp_path_factory.mktemp("checkov-home"))
    cmd = [sys.executable, "-c", RUNNER, "-d", str(TF_ROOT.relative_to(REPO)), "--framework", "terraform",
           "--skip-download", "--compact", "-o", "json"]
    started = time.monotonic()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    try:
        report = json.loads(res.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    if isinstance(report, list):  # one entry per framework; only terraform was asked for
        assert len(report) == 1, [r.get("check_type") for r in report]
        report = report[0]
    report["_elapsed_s"] = elapsed
    report["_exit_code"] = res.returncode
    return report


def test_checkov_is_the_pinned_version(checkov_report):
    assert checkov_report["summary"]["checkov_version"] == "3.1.47"
    assert checkov_report["check_type"] == "terraform"


def test_checkov_finds_no_failed_check(checkov_report):
    failed = checkov_report["results"]["failed_checks"]
    listing = "\n".join(f"{c['check_id']} {c['resource']} {c['file_path']}:{c['file_line_range']} {c['check_name']}"
                        for c in failed)
    assert checkov_report["summary"]["failed"] == 0 and not failed, f"checkov failures:\n{listing}"
    assert checkov_report["_exit_code"] == 0


def test_checkov_parsed_everything_and_checked_a_meaningful_amount(checkov_report):
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 100
    assert summary["passed"] >= 400, summary


def test_key_security_checks_ran_and_passed(checkov_report):
    passed = {c["check_id"] for c in checkov_report["results"]["passed_checks"]}
    missing = {k: v for k, v in KEY_CHECKS.items() if k not in passed}
    assert not missing, f"expected checks did not pass (or did not run): {missing}"


def test_every_reported_skip_carries_a_written_reason(checkov_report):
    skipped = checkov_report["results"]["skipped_checks"]
    assert len(skipped) == checkov_report["summary"]["skipped"]
    for c in skipped:
        reason = (c["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= 20, f"{c['check_id']} on {c['resource']} is skipped without a real reason: {reason!r}"


SKIP_RE = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")


def test_every_skip_comment_in_the_code_has_a_reason_and_is_documented():
    readme = (TF_ROOT / "README.md").read_text()
    found = []
    for path in sorted(TF_ROOT.rglob("*.tf")):
        for line in path.read_text().splitlines():
            m = SKIP_RE.search(line.strip())
            if "checkov:skip" in line:
                assert m, f"malformed skip comment in {path.name}: {line.strip()}"
                check_id, reason = m.group(1), (m.group(2) or "").strip()
                assert len(reason) >= 20, f"{path.name}: skip of {check_id} has no written reason"
                assert check_id in readme, f"{check_id} is skipped in {path.name} but not listed in README.md"
                found.append(check_id)
    assert found, "no skip comments found: update this test if all skips were removed"


def test_skips_in_code_match_skips_reported(checkov_report):
    in_code = set()
    for path in TF_ROOT.rglob("*.tf"):
        in_code |= set(re.findall(r"checkov:skip=([A-Z0-9_]+)", path.read_text()))
    reported = {c["check_id"] for c in checkov_report["results"]["skipped_checks"]}
    assert reported <= in_code
    assert in_code <= reported, f"skip comments for checks that no longer fire (remove them): {in_code - reported}"


def test_checkov_runs_within_budget(checkov_report):
    # measured at about 5 s on 2 cores; a large jump means checkov is waiting on something
    assert checkov_report["_elapsed_s"] < 60, f"checkov took {checkov_report['_elapsed_s']:.1f} s"


def test_checkov_runner_is_the_installed_cli():
    cli = Path(sys.executable).parent / "checkov"
    assert cli.exists(), "checkov CLI missing from the virtualenv"
    assert "from checkov.main import Checkov" in cli.read_text()
