"""The project's one version number: pyproject.toml's, read once at start-up."""

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "python-logger"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def project_version() -> str:
    """Return pyproject.toml's version, or the installed distribution's without the file."""
    # The checkout's file wins: an install made before a version bump would report the old one.
    if PYPROJECT.is_file():
        with PYPROJECT.open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    return metadata.version(DISTRIBUTION)
