"""``ivr models ...``: install and list the offline Vosk speech models."""
from __future__ import annotations

import click


def _models_dir():
    from ivr.config import load_config
    return load_config().models_dir


def register(cli):
    """Add the ``models`` group to the ``ivr`` command."""

    @cli.group("models")
    def models():
        """Offline speech recognition models (Vosk), one folder per language."""

    @models.command("download")
    @click.argument("langs", nargs=-1, required=True)
    @click.option("--sha256", default=None, help="Expected SHA-256 of the archive (only with one LANG).")
    @click.option("--no-progress", is_flag=True, help="No progress bar (for logs).")
    def download(langs, sha256, no_progress):
        """Download the official small model for each LANG (ru, uk, en)."""
        from speech.download import MODELS, DownloadError, download_model
        if sha256 and len(langs) > 1:
            raise click.UsageError("--sha256 applies to one language at a time")
        unknown = [lang for lang in langs if lang not in MODELS]
        if unknown:
            raise click.UsageError(f"no model for {', '.join(unknown)}; known: {', '.join(sorted(MODELS))}")
        models_dir = _models_dir()
        for lang in langs:
            try:
                path = download_model(lang, models_dir, progress=not no_progress, sha256=sha256)
            except DownloadError as exc:
                # One line, and no attempt at the other languages: they would fail the same way.
                raise click.ClickException(f"{lang} not installed: {exc}") from None
            click.echo(f"{lang}: installed {MODELS[lang].name} in {path}")

    @models.command("list")
    def list_():
        """Installed models and their size."""
        from speech.download import list_models
        models_dir = _models_dir()
        rows = list_models(models_dir)
        if not rows:
            click.echo(f"no models installed in {models_dir}; use `ivr models download LANG`")
            return
        for lang, path, size in rows:
            click.echo(f"{lang}\t{size / 1024 ** 2:8.1f} MiB\t{path}")
