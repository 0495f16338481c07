"""Download and install official Vosk small models into ``models_dir/<lang>``.

The download streams into a temporary file inside models_dir (same filesystem, so the final
rename is atomic), is checked against SHA-256, unpacked into a temporary folder, and only then
swapped in; an existing install is replaced only after all of that succeeded, and a failure
leaves nothing behind.

Checksums: alphacephei.com publishes no SHA-256 for these archives that we could verify when
this was written (its model-list.json has sizes and MD5s, which we did not have offline), so
``sha256`` is None in the table rather than invented. Then we look for a ``<url>.sha256`` side
file; if there is none, the computed hash is logged/printed with a warning so an administrator
can pin it (``ivr models download LANG --sha256 HEX`` or by filling in the table).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from .models import looks_like_model

log = logging.getLogger(__name__)

BASE_URL = "https://alphacephei.com/vosk/models/"
MAX_UNPACKED_BYTES = 8 * 1024 ** 3  # refuse zip bombs; the largest official models are ~4 GB


@dataclass(frozen=True)
class ModelSpec:
    name: str
    url: str
    sha256: str | None = None  # None: not known (see module docstring), never made up


MODELS: dict[str, ModelSpec] = {
    "ru": ModelSpec("vosk-model-small-ru-0.22", BASE_URL + "vosk-model-small-ru-0.22.zip"),
    "uk": ModelSpec("vosk-model-small-uk-v3-small", BASE_URL + "vosk-model-small-uk-v3-small.zip"),
    "en": ModelSpec("vosk-model-small-en-us-0.15", BASE_URL + "vosk-model-small-en-us-0.15.zip"),
}


class DownloadError(RuntimeError):
    """The model could not be downloaded, verified or installed; nothing was changed."""


def _expected_sha256(spec: ModelSpec, session: requests.Session, override: str | None) -> str | None:
    if override:
        return override.strip().lower()
    if spec.sha256:
        return spec.sha256.lower()
    try:
        resp = session.get(spec.url + ".sha256", timeout=(10, 30))
        if resp.status_code == 200 and resp.text.split():
            value = resp.text.split()[0].strip().lower()
            if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
                return value
    except requests.RequestException:
        pass
    return None


def _reason(url: str, exc: requests.RequestException) -> str:
    """Why a request failed, in a few words on one line (requests' own messages nest the whole
    chain of urllib3 exceptions, a few hundred characters for "no network")."""
    host = urlsplit(url).hostname or url
    if isinstance(exc, requests.ConnectTimeout):
        return f"{host} did not answer (no network?)"
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.ChunkedEncodingError):
        text = str(exc)
        if "resolve" in text or "Name or service not known" in text or "getaddrinfo" in text:
            return f"cannot find {host} (no network, or no DNS)"
        if "refused" in text.lower():
            return f"{host} refused the connection"
        if "reset" in text.lower() or "aborted" in text.lower():
            return f"the connection to {host} broke off"
        return f"cannot connect to {host} (no network?)"
    if isinstance(exc, requests.Timeout):
        return f"{host} stopped sending"
    return " ".join(str(exc).split())[:200]


def _fetch(url: str, dest, session: requests.Session, progress: bool, label: str) -> str:
    """Stream *url* into the open file *dest*; returns the SHA-256 hex digest."""
    digest = hashlib.sha256()
    try:
        with session.get(url, stream=True, timeout=(10, 60)) as resp:
            if resp.status_code != 200:
                raise DownloadError(f"download of {url} failed: HTTP {resp.status_code}")
            total = int(resp.headers.get("Content-Length") or 0) or None
            received = 0
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label)
            try:
                for block in resp.iter_content(chunk_size=1 << 16):
                    dest.write(block)
                    digest.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
    except requests.RequestException as exc:  # includes an early close with Content-Length set
        raise DownloadError(f"download of {url} failed: {_reason(url, exc)}") from exc
    if total is not None and received != total:
        raise DownloadError(f"download of {url} is truncated: got {received} of {total} bytes")
    return digest.hexdigest()


def _unpack(zip_path: Path, into: Path) -> Path:
    """Extract safely and return the model root inside *into*."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = zf.infolist()
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise DownloadError("archive unpacks to more than 8 GB; refusing")
            root = into.resolve()
            for m in members:
                target = (into / m.filename).resolve()
                if target != root and root not in target.parents:
                    raise DownloadError(f"archive member {m.filename!r} points outside the folder; refusing")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"downloaded file is not a valid zip archive: {exc}") from exc
    if looks_like_model(into):
        return into
    subdirs = [p for p in into.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and looks_like_model(subdirs[0]):
        return subdirs[0]
    raise DownloadError("archive does not contain a Vosk model (no am/final.mdl and conf/model.conf)")


def download_model(lang: str, models_dir: Path, *, progress: bool = True,
                   session: requests.Session | None = None, sha256: str | None = None) -> Path:
    """Download the official small model for *lang* into ``models_dir/lang``; returns that path."""
    spec = MODELS.get(lang)
    if spec is None:
        raise DownloadError(f"no downloadable model for language {lang!r}; known: {', '.join(sorted(MODELS))}")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    session = session or requests.Session()
    final = models_dir / lang
    fd, part_name = tempfile.mkstemp(dir=models_dir, prefix=f".{lang}-", suffix=".zip.part")
    part = Path(part_name)
    unpack_dir = None
    try:
        with os.fdopen(fd, "wb") as fh:
            got = _fetch(spec.url, fh, session, progress, f"{lang} {spec.name}")
        expected = _expected_sha256(spec, session, sha256)
        if expected is None:
            log.warning("no published SHA-256 for %s; downloaded file has SHA-256 %s (pin it with --sha256)",
                        spec.url, got)
        elif got != expected:
            raise DownloadError(f"checksum mismatch for {spec.url}: expected SHA-256 {expected}, got {got}")
        unpack_dir = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{lang}-unpack-"))
        root = _unpack(part, unpack_dir)
        # Swap in: the old install (if any) is moved aside only now, and restored if the
        # final rename fails, so a working model is never lost to a failed update.
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{lang}-old-"))
            os.rename(final, old / "model")
        try:
            os.rename(root, final)
        except OSError:
            if old is not None:
                os.rename(old / "model", final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        (final / ".source").write_text(f"{spec.url}\nsha256 {got}\n", encoding="utf-8")
        log.info("installed %s model %s into %s", lang, spec.name, final)
        return final
    finally:
        part.unlink(missing_ok=True)
        if unpack_dir is not None:
            shutil.rmtree(unpack_dir, ignore_errors=True)


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_models(models_dir: Path) -> list[tuple[str, Path, int]]:
    """Installed models as (language, folder, size in bytes), sorted by language."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return [(p.name, p, _folder_size(p)) for p in sorted(models_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".") and looks_like_model(p)]
