"""deploy/: the environment example is complete and loads; the unit and proxy agree with the app."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ivr import config as config_module
from ivr.ops import checks
from ivr.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def example_env() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "ivr.env.example").read_text().splitlines():
        match = re.fullmatch(r"(IVR_[A-Z_]+)=(.*)", line.strip())
        if match:
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]  # systemd strips the quotes
            values[match.group(1)] = value
    return values


@pytest.fixture
def example(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("IVR_") and not key.startswith("IVR_TEST_"):
            monkeypatch.delenv(key)
    values = example_env()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    return values


def test_example_environment_loads_and_names_every_setting(example, caplog):
    with caplog.at_level("WARNING", logger="ivr.config"):
        cfg = load_config()
    assert not caplog.records  # no unknown or misspelt variable
    assert cfg.trust_proxy and cfg.validate_signatures and cfg.public_url.startswith("https://")
    assert cfg.generated_secrets == ()
    text = (DEPLOY / "ivr.env.example").read_text()
    unmentioned = sorted(name for name in config_module._READ if name not in text)
    assert unmentioned == []


def test_the_readme_names_every_setting(example):
    load_config()
    readme = (DEPLOY.parent / "README.md").read_text()
    assert sorted(name for name in config_module._READ if f"`{name}`" not in readme) == []


def test_placeholders_fail_the_check(example):
    result = checks.secrets(load_config())
    assert not result.ok
    assert "IVR_TWILIO_AUTH_TOKEN is still the example's placeholder" in result.detail
    assert "IVR_SECRET_KEY is still the example's placeholder" in result.detail


def test_unit_and_proxy_match_the_app():
    unit = (DEPLOY / "ivr.service").read_text()
    assert "gunicorn -c /etc/ivr/gunicorn.conf.py --bind 127.0.0.1:8000" in unit
    assert "EnvironmentFile=/etc/ivr/ivr.env" in unit and "UMask=0027" in unit
    nginx = (DEPLOY / "nginx-ivr.conf").read_text()
    assert "server 127.0.0.1:8000;" in nginx
    # Every header ProxyFix reads with IVR_TRUST_PROXY=1 is set by the proxy.
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"):
        assert re.search(rf"proxy_set_header {header} +\$", nginx), header
