from commands.render import (
    NO_PING,
    Reply,
    bold,
    bullets,
    code,
    lines,
    message_content,
    seq,
    to_html,
    to_plain,
    txn_id,
    user,
)


def test_user_text_is_escaped():
    frag = seq("reason: ", '<script>alert("x")</script> & <a href="javascript:x">y</a>')
    html = to_html(frag)
    assert "<script>" not in html and "<a " not in html
    assert "&lt;script&gt;" in html
    assert to_plain(frag).endswith('<a href="javascript:x">y</a>')


def test_structure_renders_both_ways():
    frag = lines([bold("Title"), bullets([seq("one ", code("<x>")), "two"])])
    assert to_plain(frag) == "Title\n• one <x>\n• two"
    assert (
        to_html(frag) == "<b>Title</b><br><ul><li>one <code>&lt;x&gt;</code></li><li>two</li></ul>"
    )


def test_quiet_user_links_do_not_spell_the_id():
    frag = user("@alice:example.org")
    assert "@alice:example.org" not in to_plain(frag)
    assert to_plain(frag).replace(NO_PING, "") == "@alice:example.org"
    assert 'href="https://matrix.to/#/@alice:example.org"' in to_html(frag)
    assert to_plain(user("@a:b", quiet=False)) == "@a:b"


def test_notice_reply_has_empty_mentions():
    content = message_content(Reply(seq("hi")), in_reply_to="$cmd")
    assert content["msgtype"] == "m.notice"
    assert content["m.mentions"] == {}
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
    assert content["format"] == "org.matrix.custom.html"


def test_pinging_message_is_text_with_mentions():
    content = message_content(Reply(seq("GO"), ping=("@b:x", "@a:x", "@a:x")))
    assert content["msgtype"] == "m.text"
    assert content["m.mentions"] == {"user_ids": ["@a:x", "@b:x"]}
    assert "m.relates_to" not in content


def test_reply_inside_a_thread_stays_in_the_thread():
    content = message_content(Reply(seq("hi")), in_reply_to="$cmd", thread_root="$root")
    assert content["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$cmd"},
    }


def test_oversized_messages_are_cut_to_fit_an_event():
    content = message_content(Reply(seq("<" * 50_000)))
    import json

    assert len(json.dumps(content, ensure_ascii=False).encode()) <= 60_000
    assert content["body"].endswith("(cut: too long for one message)")
    assert "<" not in content["formatted_body"]


def test_transaction_ids_follow_the_source_and_sort_by_its_time():
    first = txn_id("$event", at=1_764_150_000_000)
    assert first == txn_id("$event", 0, at=1_764_150_000_000)  # the same source, the same ID
    assert first.startswith("commons.") and len(first) <= 64
    assert txn_id("$event", "poll", at=1_764_150_000_000) != first
    assert txn_id("$other", at=1_764_150_000_000) != first
    # Later sources sort after earlier ones, whatever their hashes.
    times = [1_764_150_000_000 + step for step in (0, 1, 999, 86_400_000)]
    ids = [txn_id(f"$e{i}", at=t) for i, t in enumerate(reversed(times))]
    assert sorted(ids) == list(reversed(ids))
