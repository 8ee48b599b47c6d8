import pytest

from commands.events import (
    command_text,
    edited_event,
    html_to_command_text,
    pill_user_id,
    reply_target,
    thread_root,
)


@pytest.mark.parametrize(
    ("href", "user_id"),
    [
        ("https://matrix.to/#/@alice:example.org", "@alice:example.org"),
        ("https://matrix.to/#/%40alice%3Aexample.org", "@alice:example.org"),
        ("https://matrix.to/#/@alice:example.org?via=x", "@alice:example.org"),
        ("https://matrix.to/#/#room:example.org", None),
        ("https://example.org/#/@alice:example.org", None),
        ("javascript:alert(1)", None),
    ],
)
def test_pill_user_id(href, user_id):
    assert pill_user_id(href) == user_id


def test_pills_become_matrix_ids():
    html = (
        '!kudos <a href="https://matrix.to/#/@alice:example.org">Alice</a> and '
        '<a href="https://matrix.to/#/@bob:example.org"><b>Bob</b></a> 2 -- for &lt;b&gt;'
    )
    assert html_to_command_text(html) == (
        "!kudos @alice:example.org and @bob:example.org 2 -- for <b>"
    )


def test_reply_fallback_is_dropped():
    html = "<mx-reply><blockquote>!help old</blockquote></mx-reply>!kudos"
    assert html_to_command_text(html) == "!kudos"
    assert command_text({"body": "> <@a:b> old\n> line\n\n!kudos"}) == "!kudos"


def test_line_breaks_survive():
    html = "<p>!propose Title</p><p>Description<br>more</p>"
    assert html_to_command_text(html) == "!propose Title\nDescription\nmore"


def test_command_text_prefers_html_only_when_declared():
    assert command_text({"body": "!help", "formatted_body": "<b>x</b>"}) == "!help"
    assert command_text({"body": 5}) == ""


def test_relations():
    edit = {"m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}}
    assert edited_event(edit) == "$orig"
    assert edited_event({}) is None
    thread = {
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": "$root",
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": "$last"},
        }
    }
    assert thread_root(thread) == "$root"
    assert reply_target(thread) is None
    real = {"m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}}
    assert reply_target(real) == "$x"
    assert thread_root(real) is None
