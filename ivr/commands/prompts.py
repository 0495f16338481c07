"""``ivr prompts ...``: the prompt texts as callers hear them, for review by native speakers."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import LANGUAGES


def review_text(prompts, langs) -> tuple[str, list[str]]:
    """Every prompt with every combination of parameters filled in, grouped by prompt key, then the
    words spoken inside prompts with their grammatical forms. Returns the text and the problems
    (prompts that could not be rendered), which are also marked in the text."""
    from ivr.prompts import PromptError

    lines: list[str] = []
    problems: list[str] = []
    keys = list(dict.fromkeys(k for lang in langs for k in prompts.sentences(lang)))
    for key in keys:
        lines.append(f"== {key}")
        for lang in langs:
            try:
                examples = prompts.examples(lang, key)
            except PromptError as exc:
                examples, problem = [], str(exc)
                lines.append(f"{lang}  !! {problem}")
                problems.append(f"{lang}: {problem}")
            for label, say in examples:
                try:
                    text = prompts.render(say, lang)[1]
                except PromptError as exc:
                    text = f"!! {exc}"
                    problems.append(f"{lang} {key} {label}: {exc}")
                lines.append(f"{lang}  {f'[{label}] ' if label else ''}{text}")
        lines.append("")
    lines.append("== words spoken inside prompts (form: text)")
    for lang in langs:
        for key, forms in prompts.words(lang).items():
            spelled = "; ".join([prompts.texts(lang)[key], *(f"{form}: {text}" for form, text in forms.items())])
            lines.append(f"{lang}  {key}: {spelled}")
    return "\n".join(lines) + "\n", problems


def register(cli):
    """Add the ``prompts`` group to the ``ivr`` command."""

    @cli.group("prompts")
    def prompts_group():
        """Prompt texts per language (audio_prompts/<lang>/prompts.json or IVR_PROMPTS_DIR)."""

    @prompts_group.command("render")
    @click.option("--lang", type=click.Choice(LANGUAGES), default=None,
                  help="Only this language (default: all languages).")
    @click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
                  help="Write to this file instead of the screen.")
    def render(lang, out):
        """Every prompt with every utility, register and sample number filled in, for review."""
        from ivr.config import load_config
        from ivr.prompts import Prompts

        prompts = Prompts(load_config().prompts_dir)
        langs = [lang] if lang else list(LANGUAGES)
        try:
            text, problems = review_text(prompts, langs)
        except (OSError, ValueError) as exc:  # a missing or unreadable prompts.json
            raise click.ClickException(f"cannot read the prompts in {prompts.base}: {exc}") from None
        if out:
            out.write_text(text, encoding="utf-8")
            click.echo(f"wrote {len(text.splitlines())} lines to {out}")
        else:
            click.echo(text, nl=False)
        if problems:
            raise click.ClickException(f"{len(problems)} prompts could not be rendered:\n" + "\n".join(problems))
