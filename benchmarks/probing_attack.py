"""The probing attack on the phone line, replayed in process: can a caller who knows only an
account number find the customer's previous reading by trying values?

    .venv/bin/python benchmarks/probing_attack.py

On a scratch SQLite database with the demo records, the customer of account 1000003 gives 1500
from their phone. Then anonymous calls, exactly as Twilio makes them, run a binary search over
0..10000, two values per call: "lower than the previous one" raises the low bound, "unusually
high consumption" or a read-back ("That's ...": the value passed, the script hangs up) lowers
the high bound. Prints the calls, values tried, time, the script's answer and the refusals stored.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOWER = "The reading is lower than the previous one."
HIGH = "This reading would mean unusually high consumption."


def main() -> None:
    data = tempfile.mkdtemp(prefix="ivr-probe-")
    os.environ["IVR_DATA_DIR"] = data
    from sqlalchemy import func, select

    from ivr.app import create_app
    from ivr.config import load_config
    from ivr.voice.simulator import SimulatedCall, flask_transport
    from readings_store.db import make_engine, make_session_factory, upgrade
    from readings_store.demo import load_demo
    from readings_store.models import ValueRefusal

    cfg = load_config(twilio_auth_token="probe-" + "0" * 26, speech_engines={k: "off" for k in "ro ru uk en".split()})
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    sessions = make_session_factory(engine)
    with sessions() as s:
        load_demo(s, accounts_per_region=5)
        s.commit()
    client = create_app(cfg, engine=engine).test_client()

    def new_call(caller: str) -> SimulatedCall:
        c = SimulatedCall("http://localhost", cfg.twilio_auth_token, flask_transport(client), caller=caller)
        c.start()
        for keys in ("4", "1", "1000003#"):
            c.press(keys)
        return c

    customer = new_call("+37369555111")
    customer.press("1500#")
    customer.press("1")

    low, high, calls, values = 0, 10000, 0, 0
    started = time.perf_counter()
    while high - low > 1 and calls < 30:
        calls += 1
        c = new_call("anonymous")
        for _ in range(2):
            mid = (low + high) // 2
            values += 1
            texts = c.press(f"{mid}#").texts
            if LOWER in texts:
                low = mid
            elif HIGH in texts:
                high = mid
            else:
                high = mid
                break  # read back: hang up without confirming
    seconds = time.perf_counter() - started
    with sessions() as s:
        refusals = s.scalar(select(func.count()).select_from(ValueRefusal))
    print(f"calls {calls}, values tried {values}, {seconds:.2f} s; the script's answer {high} "
          f"(the previous reading is 1500); refusals stored {refusals}; limit {cfg.probe_limit}")


if __name__ == "__main__":
    main()
