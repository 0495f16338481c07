"""The phone line's side of the media endpoint (``IVR_MEDIA_HANDLERS=ivr.voice.stream_line:handlers``):
speech answers heard over a Twilio Media Stream take their turn through the same turn service
as the webhooks, and the live call is moved on with Twilio's REST API.

- ``question(call_sid)``: the call's current speech question (its language's Vosk grammar for
  the step, with the names the question offers), or None when no spoken answer is expected (a
  keypad step, a caller who typed a number, a language not heard by Vosk, a call that is over).
- ``on_utterance``: the answer is parsed and judged exactly as a recorded one
  (``SpeechSteps.from_recognition``), its audio kept as a WAV with an ``Utterance`` row, and the
  turn taken with the question's ``seq``. Only the request that claims the turn moves the call:
  ``client.calls(sid).update(url=<the answered step's URL>, method="POST")``; Twilio then fetches
  the answer stored for that turn (the next question). An answer to a question the call already
  left (the caller pressed keys meanwhile) loses the claim and changes nothing.
- ``on_speech_started`` (barge-in): the call is moved to the same question without its prompt
  (``/voice/listen/<step>``), which stops the prompt and restarts the keypad's timeout.
- ``authorize`` (a stream's ``start`` message, before it takes a slot): the stream is opened only
  for a live call on the stream transport whose one-time token (the ``<Stream>``'s ``<Parameter>``)
  it names, once (``calls.bind_stream``); anything else is closed and changes nothing, so a
  replayed handshake can neither fill the server nor move somebody's call.
- ``on_refused`` (the media server is full or behind and will not recognise this call), and
  ``fall_back`` (Twilio reports the call's stream stopped or failed: the media server died): the
  call is moved to the record transport for good (``calls.use_record_transport``) and, if it is at
  a question heard by speech, moved to that question again with its prompt
  (``/voice/listen/<step>?prompt=1``), now followed by ``<Record>``. A call that is over, unknown
  or already moved changes nothing.
"""
from __future__ import annotations

from typing import Callable

import grammars
from sqlalchemy.orm import Session, sessionmaker

from ivr import calls, dialog
from ivr.config import RECORD_TRANSPORT, Config
from ivr.logsafe import safe_logger
from ivr.voice.media_server import Handlers, Question
from ivr.prompts import Prompts
from ivr.twilio_routes import TwilioRoutes
from ivr.voice.speech_steps import SpeechSteps
from ivr.voice.twiml import STREAM_TOKEN_PARAMETER, TwimlRenderer

log = safe_logger(__name__)
STREAM_ENGINE = "vosk-stream"  # Utterance.engine of an answer heard over the stream


class StreamLine:
    def __init__(self, config: Config, sessions: sessionmaker, speech: SpeechSteps, prompts: Prompts,
                 rest_client, *, models: Callable | None = None):
        """``rest_client``: a ``twilio.rest.Client`` (its ``calls(sid).update`` moves a live call)."""
        if not config.public_url:
            raise ValueError("the stream transport needs IVR_PUBLIC_URL: the URLs the live call is moved to")
        self.config = config
        self.sessions = sessions
        self.speech = speech
        self.prompts = prompts
        self.rest = rest_client
        self.models = models
        self.urls = TwilioRoutes(config.public_url)

    # --- URLs and TwiML, as the webhooks build them ----------------------------------------------

    def renderer(self) -> TwimlRenderer:
        return TwimlRenderer(self.config, self.prompts, self.urls.step, self.urls.prompt_audio,
                             self.speech.engine_for, self.urls.recording_status())

    # --- the media endpoint's handlers ------------------------------------------------------------

    def handlers(self) -> Handlers:
        return Handlers(questions=self.question, on_utterance=self.on_utterance,
                        on_speech_started=self.on_speech_started, models=self.models or self.speech.pool.get,
                        on_refused=self.on_refused, authorize=self.authorize)

    def _speech_question(self, session: Session, call) -> tuple[Question, dialog.CallState] | None:
        """The question the call is at, when Vosk may hear its answer over the stream, with the
        grammar of what it listens for (``Ask.speech``, ``Ask.phrases``); else None."""
        found = calls.speech_question(session, self.config, call, self.speech.engine_for)
        if found is None or call.speech_transport == RECORD_TRANSPORT:  # recorded, not streamed
            return None
        state, kind, ask = found
        grammar = tuple(grammars.build_grammar(state.lang, kind, ask.phrases))
        return Question(language=state.lang, grammar=grammar, step=state.step.value, seq=call.seq), state

    def question(self, call_sid: str) -> Question | None:
        with self.sessions() as session:
            found = self._speech_question(session, calls.find_call(session, call_sid))
            return found[0] if found else None

    def on_utterance(self, call_sid: str, question: Question, recognition, wav: bytes) -> None:
        def listen(state: dialog.CallState, ask: dialog.Ask):
            return self.speech.from_recognition(state.lang, ask.speech, recognition, state.tries + 1, ask.phrases,
                                                audio=wav, engine=STREAM_ENGINE)

        renderer = self.renderer()
        with self.sessions() as session:
            answer = calls.take_turn(session, self.config, call_sid=call_sid, step=question.step, seq=question.seq,
                                     keys=dialog.Event("timeout"), listen=listen, render=renderer.render,
                                     apology=renderer.apology)
        if answer.taken:
            # Twilio requests the answered step's URL; that turn is taken, so it gets its stored
            # answer: the next question.
            self.rest.calls(call_sid).update(url=self.urls.step(question.step, question.seq), method="POST")
        else:
            log.info("call %s: spoken answer to %s (turn %d) came after the call moved on: dropped",
                     call_sid, question.step, question.seq)

    def on_speech_started(self, call_sid: str) -> None:
        with self.sessions() as session:
            call = calls.find_call(session, call_sid)
            found = self._speech_question(session, call)
            if found is None:
                return
            question = found[0]
        self.rest.calls(call_sid).update(url=self.urls.listen(question.step, question.seq), method="POST")

    def authorize(self, call_sid: str, parameters: dict) -> str | None:
        """None when the stream may open (and its token is used now), else why not."""
        with self.sessions() as session:
            return calls.bind_stream(session, self.config, call_sid, parameters.get(STREAM_TOKEN_PARAMETER))

    def on_refused(self, call_sid: str) -> None:
        self.fall_back(call_sid, "media stream refused")

    def fall_back(self, call_sid: str, why: str) -> bool:
        """Hear the call with the record transport from now on and, at a question heard by speech,
        ask it again at once with ``<Record>``. True when the call was moved to that question."""
        with self.sessions() as session:
            call = calls.use_record_transport(session, call_sid, only_if_streaming=True)
            if call is None:
                log.info("call %s: %s, but the call is over, unknown or recorded already: nothing changed",
                         call_sid, why)
                return False
            # Read after the change: a turn taken meanwhile has moved the question on.
            found = calls.speech_question(session, self.config, call, self.speech.engine_for)
            step, seq = (found[0].step.value, call.seq) if found else (None, None)
        if found is None:  # a keypad question sounds the same with either transport
            log.info("call %s: %s; speech answers will be recorded from now on", call_sid, why)
            return False
        log.warning("call %s: %s; %s (turn %d) asked again with the record transport", call_sid, why, step, seq)
        self.rest.calls(call_sid).update(url=self.urls.listen(step, seq, prompt=True), method="POST")
        return True


def handlers(config: Config) -> Handlers:
    """``IVR_MEDIA_HANDLERS=ivr.voice.stream_line:handlers``: the phone line over the configured database
    and Twilio account."""
    from twilio.rest import Client

    from readings_store.db import make_engine, make_session_factory

    if not (config.twilio_account_sid and config.twilio_auth_token):
        raise ValueError("the stream transport needs IVR_TWILIO_ACCOUNT_SID and IVR_TWILIO_AUTH_TOKEN "
                         "to move live calls on")
    line = StreamLine(config, make_session_factory(make_engine(config.database_url)), SpeechSteps(config),
                      Prompts(config.prompts_dir), Client(config.twilio_account_sid, config.twilio_auth_token))
    return line.handlers()
