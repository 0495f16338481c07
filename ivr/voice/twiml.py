"""Turns dialog actions into TwiML, only through ``twilio.twiml.voice_response``."""
from __future__ import annotations

from typing import Callable

import grammars
from twilio.twiml.voice_response import Gather, Start, VoiceResponse

from ivr.config import RECORD_TRANSPORT, Config
from ivr.dialog.actions import RECORDS, Ask, Hangup, Say, Transfer
from ivr.prompts import Prompts

# Seconds of silence before a Gather gives up: a menu answer comes quickly, a long number less so.
CHOICE_TIMEOUT = 6
NUMBER_TIMEOUT = 10
# Speech steps recorded for Vosk: the keypad Gather gives way to <Record> almost at once.
SPEECH_GATHER_TIMEOUT = 1
RECORD_MAX_SECONDS = 20
RECORD_SILENCE_SECONDS = 2
# Any key ends the recording, and Twilio posts it as ``Digits`` with the Record action: a caller
# who starts typing after the Gather gave way is answering with keys, not into the recording. At
# a number step, the rest of the number is gathered next (``rest_of_number``); ``#`` alone ends
# a spoken answer.
RECORD_FINISH_KEYS = "0123456789*#"
# A question that records (the organisation's name): after the tone, up to this long, ended by
# silence or by # (keys during the prompt still answer, 0 reaching a person); on either transport.
RECORDING_MAX_SECONDS = 15
RECORDING_SILENCE_SECONDS = 3
RECORDING_FINISH_KEY = "#"
# Speech steps heard over a Media Stream: the keypad Gather waits this long after the prompt, so a
# spoken answer (cut at 15 s by the media endpoint) is heard and moves the call on before it fires.
STREAM_GATHER_TIMEOUT = 20
# The <Stream>'s <Parameter> carrying the call's one-time stream token (``calls.issue_stream_token``):
# Twilio hands it to the media endpoint in the stream's ``start`` message, never in a URL.
STREAM_TOKEN_PARAMETER = "token"


class TwimlRenderer:
    def __init__(self, config: Config, prompts: Prompts, url_for_step: Callable[[str, int], str],
                 url_for_prompt: Callable[[str, str], str], engine_for: Callable[[str], str] = lambda lang: "off",
                 recording_callback: str | None = None, stream_callback: str | None = None):
        """``stream_callback``: where Twilio reports the media stream's start, stop and failure."""
        self.config = config
        self.prompts = prompts
        self.url_for_step = url_for_step
        self.url_for_prompt = url_for_prompt
        self.engine_for = engine_for
        self.recording_callback = recording_callback
        self.stream_callback = stream_callback

    def _speak(self, target, say: Say, call_lang: str, *, listening: bool = False) -> None:
        """Say or play a prompt; ``listening``: its question takes speech too, so the prompt's
        speech form is said (it invites the caller to speak) where there is one."""
        lang = say.lang or call_lang
        key = self.prompts.variant(lang, say.key, listening)
        if not say.params and self.prompts.recording(lang, key):
            target.play(self.url_for_prompt(lang, key))
            return
        lang, text = self.prompts.render(say, call_lang, listening=listening)
        target.say(text, voice=self.config.voices.get(lang), language=self.config.say_languages.get(lang))

    @property
    def streaming(self) -> bool:
        return self.config.speech_transport == "stream" and bool(self.config.media_url)

    def render(self, actions: list, lang: str, seq: int, *, stream_token: str | None = None,
               transport: str | None = None) -> str:
        """TwiML for the actions; ``stream_token``: the call's first answer starts streaming the
        caller's audio to the media endpoint (stream transport), once per call, the stream
        carrying the call's token, and Twilio reporting its stop or failure to
        ``stream_callback``. ``transport``: the call's own speech transport
        (``Call.speech_transport``); ``"record"`` (its stream was refused or stopped) renders its
        questions with ``<Record>`` whatever the configuration says."""
        streamed = self.streaming and transport != RECORD_TRANSPORT
        response = VoiceResponse()
        if stream_token and streamed:
            start = Start()
            callback = dict(status_callback=self.stream_callback, status_callback_method="POST") \
                if self.stream_callback else {}
            stream = start.stream(url=self.config.media_url, track="inbound_track", **callback)
            stream.parameter(name=STREAM_TOKEN_PARAMETER, value=stream_token)
            response.append(start)
        for action in actions:
            if isinstance(action, Say):
                self._speak(response, action, lang)
            elif isinstance(action, Ask):
                self._ask(response, action, lang, seq, streamed)
            elif isinstance(action, Transfer):
                response.dial(action.number)
                response.hangup()
            elif isinstance(action, Hangup):
                response.hangup()
            else:  # pragma: no cover - programming error
                raise TypeError(f"unknown action {action!r}")
        return str(response)

    def _ask(self, response: VoiceResponse, ask: Ask, lang: str, seq: int, streaming: bool) -> None:
        action = self.url_for_step(ask.step, seq)
        if ask.expect == RECORDS:
            self._record(response, ask, lang, action)
            return
        engine = self.engine_for(lang) if ask.speech else "off"
        options = dict(input="dtmf", action=action, method="POST")
        if ask.expect == "number":
            options.update(finish_on_key="#", timeout=NUMBER_TIMEOUT)
        else:
            options.update(num_digits=ask.max_digits, timeout=CHOICE_TIMEOUT)
        streamed = engine == "vosk" and streaming
        if streamed:
            # The answer is heard over the stream while it is spoken: the media endpoint moves the
            # call on. Keys still work, during the prompt and after it.
            options.update(timeout=STREAM_GATHER_TIMEOUT, action_on_empty_result=True)
        elif engine == "vosk":
            # Keys still work and interrupt the prompt; if none come, <Record> takes the answer.
            options.update(timeout=SPEECH_GATHER_TIMEOUT)
        else:
            options.update(action_on_empty_result=True)
        if engine == "twilio":
            options.update(input="dtmf speech", language=self.config.say_languages.get(lang),
                           hints=grammars.hints(lang, ask.speech, ask.phrases), speech_timeout="auto")
        gather = Gather(**options)
        for say in ask.prompts:
            self._speak(gather, say, lang, listening=engine != "off")
        response.append(gather)
        if engine == "vosk" and not streamed:
            response.record(action=action, method="POST", max_length=RECORD_MAX_SECONDS,
                            timeout=RECORD_SILENCE_SECONDS, play_beep=False, trim="trim-silence",
                            finish_on_key=RECORD_FINISH_KEYS, recording_status_callback=self.recording_callback,
                            recording_status_callback_method="POST")
        # Reached only when nothing came back (no keys, no speech): report the silence ourselves.
        response.redirect(action + "&timeout=1", method="POST")

    def _record(self, response: VoiceResponse, ask: Ask, lang: str, action: str) -> None:
        """A question whose answer is kept as a recording, not recognised: the prompt in a keypad
        ``<Gather>`` (a key answers at once), then ``<Record>`` after a tone, whatever the transport."""
        gather = Gather(input="dtmf", action=action, method="POST", num_digits=1, timeout=SPEECH_GATHER_TIMEOUT)
        for say in ask.prompts:
            self._speak(gather, say, lang)
        response.append(gather)
        response.record(action=action, method="POST", max_length=RECORDING_MAX_SECONDS,
                        timeout=RECORDING_SILENCE_SECONDS, play_beep=True, trim="trim-silence",
                        finish_on_key=RECORDING_FINISH_KEY, recording_status_callback=self.recording_callback,
                        recording_status_callback_method="POST")
        # Reached when nothing was recorded (Twilio posts no empty recording): on, as after silence.
        response.redirect(action + "&timeout=1", method="POST")

    def rest_of_number(self, action: str) -> str:
        """After a key ended the recording at a number step: gather the rest of the number, up to
        ``#``, silently (the caller is typing); ``action`` carries the first key."""
        response = VoiceResponse()
        response.append(Gather(input="dtmf", action=action, method="POST", finish_on_key="#",
                               timeout=NUMBER_TIMEOUT, action_on_empty_result=True))
        response.redirect(action + "&timeout=1", method="POST")
        return str(response)

    def apology(self, lang: str = "en") -> str:
        response = VoiceResponse()
        self._speak(response, Say("after_hours"), lang)
        self._speak(response, Say("goodbye"), lang)
        response.hangup()
        return str(response)
