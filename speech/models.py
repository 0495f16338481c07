"""Vosk model pool: one ``vosk.Model`` per language, loaded lazily once per process.

A Vosk model is large (hundreds of MB in RAM for a small model) and slow to load (seconds), but
it is read-only and thread-safe once loaded, so every thread of a worker shares one instance;
each utterance gets its own ``KaldiRecognizer`` (see ``speech.recognizer``).
"""
from __future__ import annotations

import logging
import struct
import threading
from pathlib import Path

import vosk

log = logging.getLogger(__name__)

# Vosk logs every model-loading step at INFO to stderr; -1 keeps warnings (such as
# "Ignoring word missing in vocabulary") but drops the chatter. Must run before any load.
vosk.SetLogLevel(-1)

# Tokens that mean "unknown word" in a Vosk grammar, in order of preference. Official small
# models have "[unk]" in their vocabulary; some (e.g. the Korean small model) only have "<UNK>".
UNK_TOKENS = ("[unk]", "<UNK>", "<unk>")

# OpenFst binary format magic numbers (fst/fst.h, fst/symbol-table.cc).
_FST_MAGIC = 2125659606
_SYMTAB_MAGIC = 2125658996
_HAS_ISYMBOLS = 0x1
_HAS_OSYMBOLS = 0x2


class ModelError(RuntimeError):
    """A speech model is unusable (missing, incomplete or failed to load)."""


class ModelNotInstalled(ModelError):
    """No model folder for a language."""

    def __init__(self, lang: str, path: Path):
        self.lang = lang
        self.path = path
        super().__init__(
            f"No Vosk model for language {lang!r}: folder {path} does not exist or is not a "
            f"Vosk model. Install it with `ivr models download {lang}`."
        )


def looks_like_model(path: Path) -> bool:
    """Whether *path* has the files every Vosk model has (cheap check before a slow load)."""
    path = Path(path)
    return (path / "am" / "final.mdl").is_file() and (path / "conf" / "model.conf").is_file()


class ModelPool:
    """Lazily loaded, process-wide shared Vosk models, one folder per language code."""

    def __init__(self, models_dir: Path, extra: dict[str, Path] | None = None):
        self.models_dir = Path(models_dir)
        self.extra = {lang: Path(p) for lang, p in (extra or {}).items()}
        self._models: dict[str, vosk.Model] = {}
        self._lock = threading.Lock()

    def path(self, lang: str) -> Path:
        """Folder the model for *lang* is (or would be) loaded from."""
        if lang in self.extra:
            return self.extra[lang]
        if not lang or "/" in lang or "\\" in lang or lang.startswith("."):
            raise ValueError(f"invalid language code {lang!r}")
        return self.models_dir / lang

    def available(self) -> list[str]:
        """Languages with an installed model (loaded or not), sorted."""
        langs = set()
        if self.models_dir.is_dir():
            langs.update(p.name for p in self.models_dir.iterdir() if p.is_dir() and looks_like_model(p))
        langs.update(lang for lang, p in self.extra.items() if looks_like_model(p))
        return sorted(langs)

    def loaded(self) -> list[str]:
        return sorted(self._models)

    def get(self, lang: str) -> vosk.Model:
        """The model for *lang*, loading it on first use (thread-safe, loaded once)."""
        model = self._models.get(lang)  # fast path without the lock: dict reads are atomic
        if model is not None:
            return model
        with self._lock:
            model = self._models.get(lang)  # another thread may have loaded it meanwhile
            if model is None:
                model = self._load(lang)
                self._models[lang] = model
        return model

    def _load(self, lang: str) -> vosk.Model:
        path = self.path(lang)
        if not looks_like_model(path):
            raise ModelNotInstalled(lang, path)
        log.info("loading Vosk model %s from %s", lang, path)
        try:
            return vosk.Model(str(path))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelError(
                f"Vosk could not load the {lang!r} model from {path} ({exc}); the folder may be "
                f"incomplete or corrupt. Reinstall it with `ivr models download {lang}`."
            ) from exc

    def check_vocabulary(self, lang: str, words) -> set[str]:
        """Grammar words (or phrases) the *lang* model cannot recognise; logs one warning.

        Vosk silently drops a grammar phrase containing an unknown word (it only logs to
        stderr), so a misspelt grammar word would never be heard: check at start-up.
        """
        missing = model_missing_words(self.get(lang), words)
        if missing:
            log.warning(
                "Vosk model %r (%s) lacks %d grammar word(s), phrases with them will never be "
                "recognised: %s", lang, self.path(lang), len(missing), ", ".join(sorted(missing)),
            )
        return missing


def _split_words(words) -> set[str]:
    out: set[str] = set()
    for phrase in words:
        out.update(phrase.split())
    return out


def unk_token(model: vosk.Model) -> str | None:
    """The unknown-word token this model's vocabulary has, or None."""
    for token in UNK_TOKENS:
        if model.vosk_model_find_word(token) >= 0:
            return token
    return None


def model_missing_words(model: vosk.Model, words) -> set[str]:
    """Words (phrases are split) a loaded model lacks; "[unk]" counts as present if the
    model has any unknown-word token (the recognizer maps it)."""
    missing = set()
    for word in _split_words(words):
        if word in UNK_TOKENS:
            if unk_token(model) is None:
                missing.add(word)
        elif model.vosk_model_find_word(word) < 0:
            missing.add(word)
    return missing


def read_vocabulary(model_path: Path) -> set[str]:
    """The word list of the model at *model_path*, without loading the model.

    Big models ship ``graph/words.txt``. Small "lookahead" models (``HCLr.fst`` + ``Gr.fst``)
    often have no words.txt; Vosk then takes the output symbol table embedded in ``Gr.fst``,
    so we read that table from the OpenFst binary header the same way.
    """
    graph = Path(model_path) / "graph"
    words_txt = graph / "words.txt"
    if words_txt.is_file():
        with open(words_txt, encoding="utf-8") as fh:
            return {line.split()[0] for line in fh if line.strip()}
    gr = graph / "Gr.fst"
    if gr.is_file():
        return _fst_output_symbols(gr)
    raise ModelError(f"cannot find the vocabulary of the model at {model_path}: "
                     f"neither graph/words.txt nor graph/Gr.fst exists")


def _fst_output_symbols(path: Path) -> set[str]:
    with open(path, "rb") as fh:
        def i32() -> int:
            return struct.unpack("<i", _read(fh, 4))[0]

        def i64() -> int:
            return struct.unpack("<q", _read(fh, 8))[0]

        def string() -> bytes:
            n = i32()
            if n < 0 or n > 1 << 20:
                raise ModelError(f"{path}: corrupt OpenFst header")
            return _read(fh, n)

        if i32() & 0xFFFFFFFF != _FST_MAGIC:
            raise ModelError(f"{path} is not an OpenFst binary file")
        string(), string()  # fst type, arc type
        i32()  # version
        flags = i32()
        i64(), i64(), i64(), i64()  # properties, start, num states, num arcs

        def symbol_table() -> set[str]:
            if i32() != _SYMTAB_MAGIC:
                raise ModelError(f"{path}: corrupt symbol table")
            string()  # table name
            i64()  # available key
            size = i64()
            syms = set()
            for _ in range(size):
                syms.add(string().decode("utf-8"))
                i64()  # key
            return syms

        if flags & _HAS_ISYMBOLS:
            symbol_table()
        if not flags & _HAS_OSYMBOLS:
            raise ModelError(f"{path} has no embedded word symbol table and there is no words.txt")
        return symbol_table()


def _read(fh, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ModelError(f"{fh.name}: truncated OpenFst file")
    return data


def missing_words(model_path: Path, words) -> set[str]:
    """Which of *words* (phrases are split on spaces) the model at *model_path* lacks.

    Reads the vocabulary from disk (no model load). "[unk]" counts as present if the model
    has any unknown-word token. Same answer as ``vosk.Model.vosk_model_find_word`` (tested).
    """
    vocab = read_vocabulary(model_path)
    missing = set()
    for word in _split_words(words):
        if word in UNK_TOKENS:
            if not any(t in vocab for t in UNK_TOKENS):
                missing.add(word)
        elif word not in vocab:
            missing.add(word)
    return missing


def deterministic_view(model_path: Path, dest: Path) -> Path:
    """A folder at *dest* that is the model at *model_path* with feature dithering off.

    Kaldi's feature extraction adds random dither (``--dither`` defaults to 1.0) and Vosk
    models do not turn it off, so the same audio can give slightly different confidences, and
    on borderline audio different words, run to run and thread to thread. This builds a view
    (symlinks to the big files, a copied ``conf/`` with ``--dither=0.0`` appended) whose results
    are reproducible: used by tests and benchmarks. Whether production should run without
    dither is an open question (it affects how digital silence is featurised).
    """
    src, dest = Path(model_path).resolve(), Path(dest)
    if not looks_like_model(src):
        raise ModelNotInstalled(src.name, src)
    dest.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name == "conf":
            continue
        link = dest / entry.name
        if link.is_symlink() and link.resolve() != entry:
            link.unlink()  # left by another copy of the model (another venv, since removed)
        if not link.is_symlink() and not link.exists():
            link.symlink_to(entry)
    (dest / "conf").mkdir(exist_ok=True)
    for conf in (src / "conf").iterdir():
        text = conf.read_text(encoding="utf-8")
        if conf.name == "mfcc.conf" and "--dither" not in text:
            text = text.rstrip("\n") + "\n--dither=0.0\n"
        (dest / "conf" / conf.name).write_text(text, encoding="utf-8")
    return dest
