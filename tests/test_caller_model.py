"""The model of callers (``tests/caller_model.py``) in the normal suite: 2,000 calls with fixed
seeds, in four runs of 500 that the test workers share, every invariant checked after every turn
and every call. ``make caller-model`` runs 50,000 with a random seed."""
from __future__ import annotations

import os

import pytest

from tests import caller_model

SEEDS = (1801, 1802, 1803, 1804)
CALLS = 500
# Paths each run of 500 calls must have gone down, or its pass means little.
VISITED = ("outcome:completed", "outcome:gave_up", "outcome:hung_up", "outcome:transferred",
           "asked_person:transferred", "asked_person:hours", "asked_person:nobody", "account_read_back",
           "asked:confirm_account", "asked:region_assumed", "asked:register", "identification_item_spoken",
           "kept_at_read_back", "saved", "read_back", "twilio_retry", "stream_refused", "hang_up",
           "reason_not_understood", "reason_not_a_number", "reason_invalid_choice", "reason_no_input",
           "reason_account_not_found", "reason_below_previous", "speech:high", "speech:middling", "speech:low",
           "speech:unk", "speech:ambiguous", "speech:misheard")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("IVR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize("seed", SEEDS)
def test_callers_keep_every_invariant(seed, tmp_path, clean_env):
    try:
        report = caller_model.run(CALLS, seed, tmp_path)
    except caller_model.ModelFailure as failure:
        pytest.fail(f"caller model, seed {seed}:\n{failure}", pytrace=False)
    assert report.calls == CALLS
    missing = [what for what in VISITED if not report.stats[what]]
    assert missing == [], f"seed {seed} never went down: {missing}\n{report.summary()}"


def test_a_failure_names_its_seed_and_the_calls_turns(monkeypatch, capsys):
    def broken(self):
        self.fail("an invariant broken on purpose")

    monkeypatch.setattr(caller_model.CallRun, "_check_call", broken)
    assert caller_model.main(["--calls", "2", "--seed", "77", "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: seed 77" in err and "an invariant broken on purpose" in err
    assert "(incoming)" in err  # the call's turns
    assert "replay: python -m tests.caller_model --jobs 1 --seed 77 --calls 2" in err


def test_a_run_prints_its_seed(capsys):
    assert caller_model.main(["--calls", "3", "--seed", "5", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "caller model: 3 calls, seed 5" in out and "passed, seed 5" in out
