"""``ivr prompts ...``: the prompt texts as callers hear them, for review by native speakers."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import LANGUAGES


def review_text(prompts, langs) -> tuple[str, list[str]]:
    """Every prompt with every combination of parameters filled in, grouped by prompt key, each with
    the seconds a robot voice takes to say it; a prompt's ``speech`` form (said where the question
    also listens for speech) follows it, marked "speech". Then the words spoken inside prompts with
    their grammatical forms, and the robot speech on a call's common paths. Returns the text and the
    problems (prompts that could not be rendered), which are also marked in the text."""
    from ivr.prompts import SMS_PREFIX, PromptError, speaking_seconds

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
            forms = (False, True) if prompts.variant(lang, key, True) != key else (False,)
            for listening in forms:
                for label, say in examples:
                    tags = " ".join(t for t in ("speech" if listening else "", label) if t)
                    tags = f"[{tags}] " if tags else ""
                    try:
                        text = prompts.render(say, lang, listening=listening)[1]
                    except PromptError as exc:
                        lines.append(f"{lang}  {tags}!! {exc}")
                        problems.append(f"{lang} {key}{' (speech)' if listening else ''} {label}: {exc}")
                        continue
                    length = "text" if key.startswith(SMS_PREFIX) else f"{speaking_seconds(text):.1f} s"
                    lines.append(f"{lang}  {length:>6}  {tags}{text}")
        lines.append("")
    lines.append("== words spoken inside prompts (form: text)")
    for lang in langs:
        for key, forms in prompts.words(lang).items():
            spelled = "; ".join([prompts.texts(lang)[key], *(f"{form}: {text}" for form, text in forms.items())])
            lines.append(f"{lang}  {key}: {spelled}")
    if not problems:
        lines += ["", *path_lines(prompts, langs)]
    return "\n".join(lines) + "\n", problems


def path_lines(prompts, langs) -> list[str]:
    """The robot speech on each common path, per language: answered by voice (where the question
    listens) and keypad only, for the utility whose prompts are longest; then what was said."""
    from ivr.prompt_paths import BUDGET_SECONDS, PATHS, total, walk
    from ivr.prompts import WORDS_PER_SECOND
    from readings_store.models import UTILITIES

    lines = [f"== robot speech on a call's paths, at {WORDS_PER_SECOND:g} words a second "
             f"(a first-time caller's budget: {BUDGET_SECONDS:g} s)"]
    for path in PATHS:
        lines.append(f"-- {path.description}")
        for lang in langs:
            spoken = max((walk(prompts, lang, path, speech=True, utility=u) for u in UTILITIES), key=total)
            keyed = max((walk(prompts, lang, path, speech=False, utility=u) for u in UTILITIES), key=total)
            lines.append(f"{lang}  speech {total(spoken):.1f} s, keypad only {total(keyed):.1f} s: "
                         + ", ".join(f"{h.key} {h.seconds:.1f}" for h in spoken))
    return lines


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
        """Every prompt with every utility, register and sample number filled in, for review, with
        the seconds each takes to say and the robot speech on a call's common paths."""
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
