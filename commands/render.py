"""Rendering of bot messages: one tree of fragments gives both the plain `body` and the HTML
`formatted_body`, and every piece of user text is escaped on the way to HTML.

Nothing here pings anyone: user links carry no mention (the `m.mentions` of an event is decided by
the Reply, not by its text), and names that must never ping (leaderboards) are rendered with an
invisible separator so that old clients matching on names don't highlight them either.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Union
from urllib.parse import quote

# U+2063 INVISIBLE SEPARATOR: keeps a name readable but unmatched by name-based highlight rules.
NO_PING = "\u2063"


@dataclass(frozen=True)
class Bold:
    parts: tuple[Fragment, ...]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Italic:
    parts: tuple[Fragment, ...]


@dataclass(frozen=True)
class UserLink:
    """A Matrix ID as a matrix.to link; `quiet` breaks its text so no client highlights it."""

    user_id: str
    quiet: bool = True


@dataclass(frozen=True)
class Lines:
    """Lines separated by line breaks."""

    lines: tuple[Fragment, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[Fragment, ...]


@dataclass(frozen=True)
class Seq:
    parts: tuple[Fragment, ...] = field(default_factory=tuple)


Fragment = Union[str, Bold, Code, Italic, UserLink, Lines, Bullets, Seq]  # noqa: UP007


def seq(*parts: Fragment) -> Seq:
    return Seq(tuple(parts))


def bold(*parts: Fragment) -> Bold:
    return Bold(tuple(parts))


def code(text: str) -> Code:
    return Code(text)


def italic(*parts: Fragment) -> Italic:
    return Italic(tuple(parts))


def lines(items: Iterable[Fragment]) -> Lines:
    return Lines(tuple(items))


def bullets(items: Iterable[Fragment]) -> Bullets:
    return Bullets(tuple(items))


def user(user_id: str, *, quiet: bool = True) -> UserLink:
    return UserLink(user_id, quiet)


def _quiet(text: str) -> str:
    # Put the separator after the sigil and the first character: the ID stays readable and
    # copyable by eye, but no longer equals anyone's Matrix ID or display name.
    return text[:2] + NO_PING + text[2:] if len(text) > 2 else text


def render(fragment: Fragment) -> tuple[str, str]:
    """The plain text and the HTML of `fragment`, made in one walk over it."""
    plain: list[str] = []
    markup: list[str] = []
    _render(fragment, plain.append, markup.append)
    return "".join(plain), "".join(markup)


def to_plain(fragment: Fragment) -> str:
    return render(fragment)[0]


def to_html(fragment: Fragment) -> str:
    return render(fragment)[1]


def _render(
    fragment: Fragment, plain: Callable[[str], None], markup: Callable[[str], None]
) -> None:
    # The most frequent kinds first: this runs for every piece of every reply.
    if isinstance(fragment, str):
        plain(fragment)
        markup(_text_html(fragment) if len(fragment) <= _SHORT else _to_html_text(fragment))
    elif isinstance(fragment, Seq):
        for part in fragment.parts:
            _render(part, plain, markup)
    elif isinstance(fragment, UserLink):
        user_id, quiet = fragment.user_id, fragment.quiet
        plain(_quiet(user_id) if quiet else user_id)
        markup(_user_html(user_id, quiet))
    elif isinstance(fragment, Bold | Italic):
        tag = "b" if isinstance(fragment, Bold) else "i"
        markup(f"<{tag}>")
        for part in fragment.parts:
            _render(part, plain, markup)
        markup(f"</{tag}>")
    elif isinstance(fragment, Code):
        plain(fragment.text)
        markup("<code>" + html.escape(fragment.text) + "</code>")
    elif isinstance(fragment, Lines):
        for i, item in enumerate(fragment.lines):
            if i:
                plain("\n")
                markup("<br>")
            _render(item, plain, markup)
    elif isinstance(fragment, Bullets):
        markup("<ul>")
        for i, item in enumerate(fragment.items):
            plain("\n• " if i else "• ")
            markup("<li>")
            _render(item, plain, markup)
            markup("</li>")
        markup("</ul>")
    else:
        raise TypeError(f"not a fragment: {fragment!r}")


def _to_html_text(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


# Short pieces of text recur in reply after reply ("Kudos from ", ": "): escaped once each.
_SHORT = 40
_text_html = functools.lru_cache(maxsize=4096)(_to_html_text)


@functools.lru_cache(maxsize=4096)  # the same few members are named in reply after reply
def _user_html(user_id: str, quiet: bool) -> str:
    href = "https://matrix.to/#/" + quote(user_id, safe="@:")
    shown = _quiet(user_id) if quiet else user_id
    return f'<a href="{html.escape(href)}">{html.escape(shown)}</a>'


@dataclass(frozen=True)
class Outgoing:
    """Another event a handler wants sent with its reply (a native poll, a poll's end).

    `key` tells apart the events one source causes; the shell derives each event's transaction
    ID from (source event, key, time queued): see `txn_id`.
    """

    event_type: str
    content: dict[str, object]
    key: str


def txn_id(source: str, key: str | int = 0, *, at: int) -> str:
    """The transaction ID of the event that `source` causes with `key`; `at` is the source's own
    time (`Context.source_ts`: an event's origin_server_ts, so the same event always gives the
    same IDs, and a homeserver drops a resend as a duplicate). A handler can so name an event
    the shell is about to queue (a native poll's).

    It starts with `at` in hex: IDs of events caused one after another sort together, so the
    outbox's unique index on them grows at its end, where a hash alone put every reply at a
    random place of it (and the commit wrote a page of it per reply)."""
    digest = hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()
    return f"commons.{at:011x}.{digest[:32]}"


@dataclass(frozen=True)
class Reply:
    """What a handler answers. The shell turns it into a Matrix event.

    `ping` lists the Matrix IDs to mention (`m.mentions.user_ids`); a reply that pings is sent as
    `m.text`, because clients never notify for `m.notice`.
    """

    body: Fragment
    ping: tuple[str, ...] = ()
    as_reply: bool = True
    # Ask the shell to upload the room's ledger up to this size as a file (`!export`).
    export_size: int | None = None
    # Further events to send after the reply, in order.
    extra: tuple[Outgoing, ...] = ()


# Synapse refuses events over 65,536 bytes; keep ours well below, envelope included.
MAX_CONTENT_BYTES = 60_000
_SURELY_SHORT = 8_000  # characters of text (6 bytes each at most) with room for the envelope


def message_content(
    reply: Reply, *, in_reply_to: str | None = None, thread_root: str | None = None
) -> dict[str, object]:
    """The content of the `m.room.message` event for `reply`."""
    body, formatted = render(reply.body)
    content: dict[str, object] = {
        "msgtype": "m.text" if reply.ping else "m.notice",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        "m.mentions": {"user_ids": sorted(set(reply.ping))} if reply.ping else {},
    }
    relates: dict[str, object] = {}
    is_reply = in_reply_to is not None and reply.as_reply
    if thread_root is not None:
        # Inside a thread the reply stays in the thread; `is_falling_back` false marks the
        # in_reply_to as a real reply, not a fallback for clients without threads.
        relates = {"rel_type": "m.thread", "event_id": thread_root}
        relates["is_falling_back"] = not is_reply
    if is_reply:
        relates["m.in_reply_to"] = {"event_id": in_reply_to}
    if relates:
        content["m.relates_to"] = relates
    # JSON escaping at most sextuples a character, so a message this short can't be too long.
    if len(body) + len(formatted) + sum(map(len, reply.ping)) < _SURELY_SHORT:
        return content
    return _fit(content)


def _fit(content: dict[str, object]) -> dict[str, object]:
    """A last guard: cut a too-long message instead of letting the server refuse it."""
    size = len(json.dumps(content, ensure_ascii=False).encode())
    if size <= MAX_CONTENT_BYTES:
        return content
    body = str(content["body"])
    keep = max(0, len(body) - (size - MAX_CONTENT_BYTES) - 200) // 2
    body = body[:keep] + "… (cut: too long for one message)"
    return {**content, "body": body, "formatted_body": html.escape(body)}


def join_fragments(parts: Sequence[Fragment], sep: str = ", ") -> Seq:
    out: list[Fragment] = []
    for i, p in enumerate(parts):
        if i:
            out.append(sep)
        out.append(p)
    return Seq(tuple(out))
