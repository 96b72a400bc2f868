"""Text an agent controls, made safe for each vendor's markup and limits.

An agent chooses its params, and policy reasons may quote them: to a
reviewer's chat client both are hostile. Slack's mrkdwn treats ``&``, ``<``
and ``>`` as control characters (``<!channel>`` pings everyone,
``<https://x|label>`` is a link), so they are always entity-escaped, and
agent text is shown inside code spans, where ``*``/``_``/``~`` do not
format, with its backticks swapped for a look-alike so it cannot close the
span. Teams renders CommonMark-style Markdown in TextBlocks and facts, so
every ASCII punctuation character of agent text gets a backslash (CommonMark
allows escaping any of them), which leaves no link, emphasis or list syntax.

Characters that change what the text around them looks like without being
seen themselves (bidirectional embeddings, overrides and isolates, which can
make ``rm -rf /`` read backwards; zero-width spaces and joiners; the byte
order mark) are shown as their code point, ``[U+202E]``, in both vendors.

Everything is also cut to a length the vendors accept, and each function
that cuts says whether it did (``Shown.cut``): a message that cannot show
everything says so (``TRUNCATED``) and sends the reviewer to the review page,
because an agent chooses its params' keys and so what falls past the cut.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import msgspec

ELLIPSIS = "…"
TRUNCATED = "(truncated: open the review page to see everything)"
# U+02CB MODIFIER LETTER GRAVE ACCENT: reads as a backtick, closes no code span.
_BACKTICK_STANDIN = "\u02cb"
_SLACK_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidi: U+061C, U+200E/F, U+202A-E (embeddings, overrides), U+2066-9
# (isolates). Invisible: U+200B-D (zero-width space, non-joiner, joiner),
# U+2060-4 (word joiner, invisible operators), U+FEFF (byte order mark).
_INVISIBLE = re.compile(r"[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

_canonical = msgspec.json.Encoder(order="sorted")


class Shown(NamedTuple):
    """Text as a message shows it, and whether it had to be cut."""

    text: str
    cut: bool


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked when cut."""
    return clipped(text, limit).text


def clipped(text: str, limit: int) -> Shown:
    if len(text) <= limit:
        return Shown(text, cut=False)
    return Shown(text[: max(limit - 1, 0)] + ELLIPSIS, cut=True)


def visible(text: str) -> str:
    """Invisible and direction-changing characters as their code points."""
    return _INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def one_line(text: str) -> str:
    """Line breaks become spaces, other control characters go, and invisible
    ones are shown."""
    return visible(_CONTROL.sub("", _LINE_BREAKS.sub(" ", text)))


def pretty_params(params: dict[str, Any]) -> str:
    """The params as indented JSON, keys sorted, whole; invisible characters shown."""
    pretty = msgspec.json.format(_canonical.encode(params), indent=2).decode()
    return visible(_CONTROL.sub("", pretty))


def params_json(params: dict[str, Any], limit: int) -> Shown:
    """``pretty_params`` cut to ``limit`` characters."""
    return clipped(pretty_params(params), limit)


# --- Slack mrkdwn ----------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities (nothing else is decoded)."""
    return text.translate(_SLACK_ENTITIES)


def _slack_inert(text: str, limit: int) -> Shown:
    """``text`` escaped, its backticks swapped, and at most ``limit`` characters
    once escaped: Slack's limits count an entity's characters."""
    pieces = [slack_escape(char) for char in visible(text).replace("`", _BACKTICK_STANDIN)]
    if sum(map(len, pieces)) <= limit:
        return Shown("".join(pieces), cut=False)
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > limit - 1:  # room for the ellipsis
            break
        kept.append(piece)
        used += len(piece)
    return Shown("".join(kept) + ELLIPSIS, cut=True)


def slack_span(text: str, limit: int) -> Shown:
    """Agent text as one inline code span: no formatting, mention or link inside."""
    inert = _slack_inert(one_line(text), limit)
    return Shown(f"`{inert.text or ' '}`", inert.cut)


def slack_code(text: str, limit: int) -> str:
    return slack_span(text, limit).text


def slack_code_block(text: str, limit: int) -> Shown:
    """A preformatted block of at most ``limit`` characters inside its fences."""
    inert = _slack_inert(text, limit)
    return Shown(f"```{inert.text}```", inert.cut)


# --- Teams (Adaptive Card Markdown) ------------------------------------------------------


def teams_text(text: str, limit: int) -> Shown:
    """Agent text as inert Markdown on one line."""
    shown = clipped(one_line(text), limit)
    return Shown(_MARKDOWN_PUNCTUATION.sub(r"\\\1", shown.text), shown.cut)


def teams_escape(text: str, limit: int) -> str:
    return teams_text(text, limit).text
