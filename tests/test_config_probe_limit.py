"""IVR_PROBE_LIMIT: refused values per account and period before the line stops explaining them."""
import pytest

from ivr.config import ConfigError, load_config


def test_default_and_override(monkeypatch, tmp_path):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IVR_PROBE_LIMIT", raising=False)
    assert load_config().probe_limit == 5
    monkeypatch.setenv("IVR_PROBE_LIMIT", "3")
    assert load_config().probe_limit == 3


@pytest.mark.parametrize("value,message", [
    ("five", "IVR_PROBE_LIMIT must be an integer, got 'five'"),
    ("2.5", "IVR_PROBE_LIMIT must be an integer"),
    ("0", "IVR_PROBE_LIMIT must be a whole number of at least 1, got 0"),
    ("-3", "IVR_PROBE_LIMIT must be a whole number of at least 1"),
])
def test_malformed_values_are_clear_errors(monkeypatch, tmp_path, value, message):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_PROBE_LIMIT", value)
    with pytest.raises(ConfigError, match=message):
        load_config()
