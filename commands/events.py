"""Reading Matrix event content as a command. Pure functions over event dicts.

Element names users with mention pills: the plain `body` holds the display name and the HTML
`formatted_body` holds a matrix.to link to the Matrix ID. The text we parse is the HTML turned
back into plain text with every pill replaced by its Matrix ID, so the parser only ever sees IDs
for pills and never has to guess which "Alice" was meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

_MATRIX_TO = ("https://matrix.to/#/", "http://matrix.to/#/")
_BLOCKS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}


class _PillText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._pill_depth = 0  # inside a user pill: its text is replaced by the ID
        self._skip_depth = 0  # inside <mx-reply>: the reply fallback is not part of the command

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth or tag == "mx-reply":
            self._skip_depth += 1
            return
        if self._pill_depth:
            self._pill_depth += 1
            return
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCKS and self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")
        elif tag == "a":
            user_id = pill_user_id(dict(attrs).get("href") or "")
            if user_id:
                self.out.append(user_id)
                self._pill_depth = 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" and not self._skip_depth and not self._pill_depth:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            self._skip_depth -= 1
            return
        if self._pill_depth:
            self._pill_depth -= 1
            return
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth and not self._pill_depth:
            self.out.append(data)


def pill_user_id(href: str) -> str | None:
    """The Matrix ID a matrix.to link points at, or None if it is not a user link."""
    for base in _MATRIX_TO:
        if href.startswith(base):
            target = unquote(href[len(base) :]).split("?", 1)[0]
            if target.startswith("@") and ":" in target:
                return target
    return None


def html_to_command_text(formatted_body: str) -> str:
    parser = _PillText()
    parser.feed(formatted_body)
    parser.close()
    return "".join(parser.out).strip()


def _strip_reply_fallback(body: str) -> str:
    # Older clients quote the replied-to message as "> " lines, then a blank line.
    if not body.startswith("> "):
        return body
    lines = body.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    return "\n".join(lines[i:]).lstrip("\n")


def command_text(content: Mapping[str, Any]) -> str:
    """The text of a message as the parser should read it (pills as Matrix IDs)."""
    body = content.get("body")
    body = body if isinstance(body, str) else ""
    formatted = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        return html_to_command_text(formatted)
    return _strip_reply_fallback(body).strip()


_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _relates(content: Mapping[str, Any]) -> Mapping[str, Any]:
    rel = content.get("m.relates_to")
    if rel is None:  # most messages: no need for the (slow) Mapping test
        return _NOTHING
    return rel if isinstance(rel, Mapping) else _NOTHING


def edited_event(content: Mapping[str, Any]) -> str | None:
    """The event an `m.replace` edit replaces, or None."""
    rel = _relates(content)
    if rel.get("rel_type") == "m.replace" and isinstance(rel.get("event_id"), str):
        return str(rel["event_id"])
    return None


def thread_root(content: Mapping[str, Any]) -> str | None:
    rel = _relates(content)
    if rel.get("rel_type") == "m.thread" and isinstance(rel.get("event_id"), str):
        return str(rel["event_id"])
    return None


def reply_target(content: Mapping[str, Any]) -> str | None:
    """The event this message replies to (a real reply, not a thread's fallback)."""
    rel = _relates(content)
    if rel.get("rel_type") == "m.thread" and rel.get("is_falling_back", True):
        return None
    reply = rel.get("m.in_reply_to")
    if isinstance(reply, Mapping) and isinstance(reply.get("event_id"), str):
        return str(reply["event_id"])
    return None
