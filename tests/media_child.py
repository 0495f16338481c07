"""A media server with the phone line's handlers in a process of its own, for a test to kill:
``python -m tests.media_child SPEC.json``. It serves the real ``MediaServer`` and ``StreamLine``
on the test's database, moving calls through the test's ``FakeTwilioRest``; only recognition is
scripted (``FakeListener``, one scripted recognition per answer and call). Prints ``port N`` once
it listens, then serves until it is killed."""
from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from pathlib import Path


def main(spec_path: str) -> None:
    from twilio.rest import Client

    from ivr.config import load_config
    from ivr.voice.media_server import MediaServer
    from ivr.prompts import Prompts
    from ivr.voice.speech_steps import SpeechSteps
    from ivr.voice.stream_line import StreamLine
    from readings_store.db import make_engine, make_session_factory
    from tests.integration.test_speech_calls import FakeRecognizer, rec
    from tests.integration.test_stream_calls import FakeListener

    spec = json.loads(Path(spec_path).read_text())
    config = load_config(database_url=spec["database_url"], twilio_auth_token=spec["auth_token"],
                         secret_key="test-secret", public_url=spec["public_url"], media_url=spec["media_url"],
                         speech_transport="stream", speech_engines=spec["speech_engines"])
    rest = Client(spec["account_sid"], spec["auth_token"])
    rest.api.base_url = spec["rest_url"]
    speech = SpeechSteps(config, recognizer=FakeRecognizer())  # the language counts as heard by Vosk
    line = StreamLine(config, make_session_factory(make_engine(config.database_url)), speech,
                      Prompts(config.prompts_dir), rest, models=lambda lang: None)
    FakeListener.scripts = {sid: deque(rec(text) for text in texts) for sid, texts in spec["scripts"].items()}
    server = MediaServer(line.handlers(), auth_token=config.twilio_auth_token, media_url=config.media_url,
                         listener_factory=FakeListener)

    async def serve():
        await server.start("127.0.0.1", 0)
        print(f"port {server.port}", flush=True)
        await asyncio.Future()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1])
