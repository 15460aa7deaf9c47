"""Elasticsearch's JDK and Maven on a fresh Debian: installed with apt when missing.

`make run`, `make up` and `make services` once stopped with "no java on PATH". Each test hides
Debian's JDK and Maven in a mount namespace of its own (tests/deploy/without_java.sh), so the
machine's PATH finds neither, and apt-get is a stand-in that records its calls and puts back
what it is asked to install. What runs after the install is the real JDK and the real Maven.
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_CALL = "install -y -qq --no-install-recommends"

# What scripts/services.sh and scripts/cluster.sh do first (es_install), then use of what it gave.
ENSURE = f"""
ROOT="{ROOT}" VAR="$1/var" LOG="$1/log"
say() {{ printf '%s\\n' "$*"; }}
die() {{ printf 'ERROR: %s\\n' "$*" >&2; exit 1; }}
mkdir -p "$LOG"
. "$ROOT/scripts/lib/elasticsearch.sh"
es_tools_ensure
home="$(java_home)"
"$home/bin/javac" -version
mvn -v -B
"""


def _ensure_without(tmp_path: Path, hide: str, **env: str) -> subprocess.CompletedProcess:
    """Run the tools' install step where `hide` ("jdk", "maven") is not installed."""
    command = [
        *("unshare", "--mount", "--propagation", "private"),
        *("bash", str(ROOT / "tests/deploy/without_java.sh"), str(tmp_path), hide),
        *("bash", "-c", ENSURE, "ensure", str(tmp_path)),
    ]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def _apt_calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "apt-get.calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_the_jdk_and_maven_are_installed_when_missing(tmp_path: Path) -> None:
    result = _ensure_without(tmp_path, "jdk maven")

    assert result.returncode == 0, result
    assert _apt_calls(tmp_path) == [
        "update -qq",
        f"{INSTALL_CALL} default-jdk-headless maven",
    ]
    assert "installing Debian's default-jdk-headless maven" in result.stdout
    # The real JDK's compiler and the real Maven run on that JDK.
    assert "javac " in result.stdout + result.stderr
    assert "Apache Maven" in result.stdout


def test_only_what_is_missing_is_installed(tmp_path: Path) -> None:
    result = _ensure_without(tmp_path, "maven")

    assert result.returncode == 0, result
    assert _apt_calls(tmp_path) == ["update -qq", f"{INSTALL_CALL} maven"]


def test_nothing_is_installed_when_both_are_there(tmp_path: Path) -> None:
    result = _ensure_without(tmp_path, "")

    assert result.returncode == 0, result
    assert _apt_calls(tmp_path) == []
    assert "installing" not in result.stdout


def test_a_failed_install_stops_with_a_clear_error(tmp_path: Path) -> None:
    result = _ensure_without(tmp_path, "jdk maven", APT_REFUSE="1")

    assert result.returncode == 1, result
    assert "ERROR: could not install default-jdk-headless maven" in result.stderr
    # apt-get's own words, from its log, say why.
    assert "E: Unable to fetch some archives" in result.stdout
