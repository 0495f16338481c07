"""Prompt texts per language from ``audio_prompts/<lang>/prompts.json``, and recorded prompt files."""
from __future__ import annotations

import functools
import json
import string
from pathlib import Path

import audio_prompts

from .dialog.actions import Digits, Say, Term

PACKAGE_DIR = Path(audio_prompts.__file__).parent
AUDIO_EXTENSIONS = (".wav", ".mp3")


class PromptError(KeyError):
    pass


@functools.lru_cache(maxsize=32)
def _load(base: str, lang: str) -> dict[str, str]:
    path = Path(base) / lang / "prompts.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class Prompts:
    def __init__(self, base: Path | None = None):
        self.base = Path(base or PACKAGE_DIR)

    def texts(self, lang: str) -> dict[str, str]:
        return _load(str(self.base), lang)

    def text(self, lang: str, key: str) -> str:
        try:
            return self.texts(lang)[key]
        except KeyError:
            raise PromptError(f"prompt {key!r} missing for language {lang!r}") from None

    def spell(self, lang: str, value: str) -> str:
        """Digits one by one, with the language's word for the decimal point."""
        point = self.text(lang, "point")
        return " ".join(point if c in ".*" else c for c in value)

    def render(self, say: Say, call_lang: str) -> tuple[str, str]:
        """(language, text) of a prompt with its parameters filled in."""
        lang = say.lang or call_lang
        params = {}
        for name, value in say.params.items():
            if isinstance(value, Digits):
                params[name] = self.spell(lang, value.value)
            elif isinstance(value, Term):
                params[name] = self.text(lang, value.key)
            else:
                params[name] = str(value)
        return lang, string.Formatter().vformat(self.text(lang, say.key), (), params)

    def recording(self, lang: str, key: str) -> Path | None:
        """A recorded file for a prompt without parameters, if one was put beside the texts."""
        for ext in AUDIO_EXTENSIONS:
            path = self.base / lang / f"{key}{ext}"
            if path.is_file():
                return path
        return None
