"""One version: pyproject.toml's is the one the API schema and /readyz show."""

import tomllib

import pytest

from config.version import project_version
from tests.conftest import ROOT


def _pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]["version"]


def test_the_version_is_pyprojects():
    assert project_version() == _pyproject_version()


@pytest.mark.django_db
def test_the_schema_and_readyz_show_pyprojects_version(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    # Ready or not (no queue cluster runs here), the probe says which release answers.
    readyz = api_client.get("/readyz").json()

    assert schema["info"]["version"] == _pyproject_version()
    assert readyz["version"] == _pyproject_version()
