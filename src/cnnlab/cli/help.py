"""The one help formatter of every ``cnnlab`` command, and did-you-mean for a mistyped command.

Help shows each option's default once: ``(default: X)`` is added unless the help text already
says its default, or there is none to show (``None``, a flag that is off, an unset option).
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable

LANG_HELP = "language of the output: en or pt (default: from CNNLAB_LANG, LC_ALL or LANG, else en)"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``ArgumentDefaultsHelpFormatter`` that never prints a default twice, nor ``(default: None)``."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def command_names(parser: argparse.ArgumentParser) -> list[str]:
    """The sub-command names of ``parser`` (``summary``, ``train``, ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []


def unknown_command(word: str, names: Iterable[str]) -> str | None:
    """A message for a mistyped command (``evalute``), or ``None`` when ``word`` is a command or an option."""
    names = list(names)
    if not names or word.startswith("-") or word in names:
        return None
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown command '{word}'{hint} (commands: {', '.join(names)}; `cnnlab --help` explains them)"
