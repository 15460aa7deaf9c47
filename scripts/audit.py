#!/usr/bin/env python3
"""Dependency audit for CI: pip-audit over the pinned requirements, npm audit over package-lock.

A known vulnerability fails the run unless requirements/audit-ignore.txt lists it with a date it
holds until and a reason. Packages that could not be checked (the advisory data out of reach)
are named in the summary; they fail the run only with AUDIT_STRICT=1, so that a machine
without that data still runs the rest of CI, and says so. Standard library only.
"""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
# Every pinned file: what runs, what tests, and the audit's own tools.
AUDITED = ("base.txt", "dev.txt", "e2e.txt", "audit.txt")
IGNORE_FILE = REQUIREMENTS / "audit-ignore.txt"
AUDIT_VENV = ROOT / "var" / "audit-venv"
PIP_AUDIT = AUDIT_VENV / "bin" / "pip-audit"
STAMP = AUDIT_VENV / ".installed"
IGNORE_LINE = re.compile(r"^(?P<id>\S+)\s+(?P<until>\d{4}-\d{2}-\d{2})\s+(?P<reason>\S.*)$")
GHSA = re.compile(r"GHSA(-[0-9a-z]{4}){3}")


def say(text: str) -> None:
    """One line of the summary."""
    print(f"[audit] {text}", flush=True)


def ignored_ids(today: dt.date) -> set[str]:
    """The advisory ids of audit-ignore.txt still in force; exit 2 on a malformed line."""
    active: set[str] = set()
    for number, raw in enumerate(IGNORE_FILE.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = IGNORE_LINE.match(line)
        if not match:
            say(f"{IGNORE_FILE.name}:{number}: want '<id> <YYYY-MM-DD> <reason>', got {line!r}")
            sys.exit(2)
        until = dt.date.fromisoformat(match["until"])
        if until < today:
            say(f"{IGNORE_FILE.name}:{number}: {match['id']} was ignored until {until}: no more")
        else:
            active.add(match["id"])
    return active


def pip_audit_install() -> None:
    """Make var/audit-venv with requirements/audit.txt, unless it is there and up to date."""
    audit_txt = REQUIREMENTS / "audit.txt"
    if STAMP.exists() and STAMP.stat().st_mtime >= audit_txt.stat().st_mtime:
        return
    shutil.rmtree(AUDIT_VENV, ignore_errors=True)
    venv.create(AUDIT_VENV, with_pip=True)
    pip = [str(AUDIT_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # The pip that venv bundles (23.2 with Python 3.11.7) refuses a pinned package asked for
    # with an extra (pip-audit's `CacheControl[filecache]`) in hash-checking mode as soon as a
    # newer release of it exists; a current pip takes the pin. The project venv upgrades pip
    # the same way (Makefile).
    subprocess.run([*pip, "--upgrade", "pip"], check=True)  # noqa: S603
    subprocess.run([*pip, "--require-hashes", "-r", str(audit_txt)], check=True)  # noqa: S603
    STAMP.touch()


def pip_audit(ignore: set[str]) -> tuple[list[str], list[str]]:
    """Audit every pin; return (vulnerabilities not ignored, packages that went unaudited)."""
    pip_audit_install()
    files = [arg for name in AUDITED for arg in ("-r", str(REQUIREMENTS / name))]
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "pip-audit.json"
        # --no-deps: every file pins its whole tree, so nothing needs resolving (or installing).
        options = ["--no-deps", "--disable-pip", "--progress-spinner", "off", "--format", "json"]
        run = subprocess.run(  # noqa: S603 - our own paths
            [str(PIP_AUDIT), *options, "--output", str(report), *files],
            capture_output=True,
            text=True,
        )
        if not report.exists():
            say(f"pip-audit wrote no report (exit {run.returncode}): {run.stderr.strip()[-500:]}")
            return [], ["every package (pip-audit failed)"]
        dependencies = json.loads(report.read_text())["dependencies"]
    found, skipped, seen = [], [], 0
    reasons: dict[str, int] = {}
    for dependency in dependencies:
        if "skip_reason" in dependency:
            skipped.append(dependency["name"])
            # "Dependency not found on PyPI and could not be audited: django (5.2.19)"
            reason = dependency["skip_reason"].split(":")[0]
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        seen += 1
        for vuln in dependency["vulns"]:
            ids = {vuln["id"], *vuln.get("aliases", [])}
            verdict = "ignored" if ids & ignore else "VULNERABLE"
            line = f"{dependency['name']} {dependency['version']}: {vuln['id']} ({verdict})"
            say(f"pip-audit: {line}; fixed in {', '.join(vuln['fix_versions']) or 'nothing yet'}")
            if not ids & ignore:
                found.append(line)
    say(f"pip-audit: {len(dependencies)} pinned packages, {seen} audited, {len(skipped)} not")
    for reason, count in reasons.items():
        say(f"pip-audit: not audited ({count}): {reason}")
    return found, skipped


def npm_audit(ignore: set[str]) -> tuple[list[str], list[str]]:
    """Audit package-lock.json; return (advisories not ignored, what went unaudited)."""
    npm = shutil.which("npm")
    if npm is None or not (ROOT / "package-lock.json").exists():
        say("npm audit: not run (no npm yet; make e2e installs it)")
        return [], ["package-lock.json (no npm)"]
    run = subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
        [npm, "audit", "--package-lock-only", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(run.stdout)
    except ValueError:
        report = {"error": {"summary": run.stderr.strip()[-300:]}}
    if "error" in report:
        status = report.get("statusCode", "")
        summary = report["error"].get("summary") or report["error"].get("detail") or ""
        say(f"npm audit: advisory data unreachable: {status} {summary}".rstrip())
        return [], ["package-lock.json (npm advisory endpoint)"]
    found = []
    for name, entry in report.get("vulnerabilities", {}).items():
        for via in entry.get("via", []):
            if not isinstance(via, dict):
                continue  # the name of another vulnerable package: reported under its own
            advisory = GHSA.search(via.get("url", ""))
            advisory_id = advisory.group(0) if advisory else str(via.get("source"))
            verdict = "ignored" if advisory_id in ignore else "VULNERABLE"
            line = f"{name}: {advisory_id} {via.get('severity', '')} ({verdict})"
            say(f"npm audit: {line}: {via.get('title', '')}")
            if verdict != "ignored":
                found.append(line)
    total = report.get("metadata", {}).get("dependencies", {}).get("total", "?")
    say(f"npm audit: {total} packages audited, {len(found)} advisories not ignored")
    return found, []


def main() -> int:
    """Run both audits; exit 1 on a vulnerability not ignored (or, if strict, on a gap)."""
    ignore = ignored_ids(dt.datetime.now(dt.UTC).date())
    python_found, python_gaps = pip_audit(ignore)
    node_found, node_gaps = npm_audit(ignore)
    found, gaps = python_found + node_found, python_gaps + node_gaps
    if found:
        say(f"FAILED: {len(found)} known vulnerabilities not in {IGNORE_FILE.name}")
        return 1
    if gaps:
        strict = os.environ.get("AUDIT_STRICT") == "1"
        unaudited = f"{len(python_gaps)} pinned Python packages" + "".join(
            f", {gap}" for gap in node_gaps
        )
        say(
            f"{'FAILED' if strict else 'WARNING'}: no known vulnerability found, but not "
            f"audited: {unaudited} (see above, and docs/development.md, 'Dependency audit')"
        )
        return 1 if strict else 0
    say("PASSED: no known vulnerability")
    return 0


if __name__ == "__main__":
    sys.exit(main())
