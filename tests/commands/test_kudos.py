import pytest

from commands import kudos as kudos_commands
from commands.render import to_plain

from .conftest import ROOM, Harness

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"


async def test_kudos_by_id_name_and_reason(room):
    reply = await room.say(A, "!kudos @bob:example.org 2 for the <b>soup</b>")
    assert reply == f"👏 Kudos from {A}: {B} +2 (now 2)"
    reply = await room.say(A, "!kudos Carol -- fixing the bike")
    assert reply == f"👏 Kudos from {A}: {C} +1 (now 1)"
    assert await room.score(B) == 2
    async with room.storage.read() as tx:
        entries = await tx.entries(ROOM)
    kudos = [e for e in entries if e.entry.kind == "kudos"]
    assert [e.text for e in kudos] == ["the <b>soup</b>", "fixing the bike"]
    assert kudos[0].entry.data["via"] == "command"
    assert kudos[0].entry.data["text_sha256"] is not None


async def test_n_is_per_receiver(room):
    reply = await room.say(A, "!kudos @bob:example.org @carol:example.org 3")
    assert reply == f"👏 Kudos from {A}: {B} +3 (now 3), {C} +3 (now 3)"


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("!kudos @alice:example.org", "yourself"),
        ("!kudos @commons:example.org", "I keep the score but don't play"),
        ("!kudos @zed:example.org", "not in this room"),
        ("!kudos @bob:example.org 4", "kudos.max_per_message"),
        ("!kudos @bob:example.org 0", "1 to 3 kudos"),
        ("!kudos", "Say whom to thank"),
        ("!kudos @bob:example.org -- " + "x" * 600, "under 500"),
    ],
)
async def test_refusals_leave_the_ledger_untouched(room, text, sentence):
    async with room.storage.read() as tx:
        before = (await tx.ledger_head(ROOM)).size
    reply = await room.say(A, text)
    assert sentence in reply
    assert "\n" not in reply
    async with room.storage.read() as tx:
        assert (await tx.ledger_head(ROOM)).size == before


async def test_daily_allowance_and_pair_cap(room):
    assert "+3" in await room.say(A, "!kudos @bob:example.org 3")
    refused = await room.say(A, "!kudos @bob:example.org")
    assert "kudos.pair_daily_cap" in refused
    assert "+3" in await room.say(A, "!kudos @carol:example.org 3")
    room.room.members_["@dave:example.org"] = "Dave"
    room.room.members_["@erin:example.org"] = "Erin"
    room.room.members_["@fay:example.org"] = "Fay"
    assert "+3" in await room.say(A, "!kudos @dave:example.org 3")
    refused = await room.say(A, "!kudos @erin:example.org 2")
    assert "kudos.daily_allowance" in refused
    assert "+1" in await room.say(A, "!kudos @erin:example.org")
    # The next local day the allowance is back.
    room.now += 86_400_000
    assert "+2" in await room.say(A, "!kudos @fay:example.org 2")


async def test_optout_and_optin(room):
    assert "out of scoring" in await room.say(B, "!optout")
    assert "already opted out" in await room.say(B, "!optout")
    assert "opted out" in await room.say(A, "!kudos @bob:example.org")
    assert "opted out" in await room.say(B, "!kudos @alice:example.org")
    assert "Welcome back" in await room.say(B, "!optin")
    assert "+1" in await room.say(A, "!kudos @bob:example.org")


async def test_reply_kudos_goes_to_the_author(room):
    room.room.senders["$msg"] = C
    reply = await room.say(A, "!kudos for this", reply_to="$msg")
    assert reply.endswith(f"{C} +1 (now 1)")
    async with room.storage.read() as tx:
        last = (await tx.entries(ROOM, newest_first=True, limit=1))[0].entry
    assert last.data["via"] == "reply" and last.data["ref"] == "$msg"


async def test_plusplus(room):
    async with room.storage.write() as tx:
        head = await tx.ledger_head(ROOM)
        ctx = room.context(tx, A, rules=head.rules)
        text = "thanks @bob:example.org++ and @carol:example.org++!"
        reply = await kudos_commands.plusplus(ctx, text)
    assert to_plain(reply.body).count("+1") == 2
    assert await room.score(B) == 1 and await room.score(C) == 1


async def test_reaction_and_its_redaction(room):
    room.room.senders["$post"] = B
    await room.run(A, kudos_commands.reaction, "$post", "👏", event_id="$react")
    assert await room.score(B) == 1
    # Someone else redacting it does not take it back; the giver does.
    await room.run(C, kudos_commands.redaction, "$react")
    assert await room.score(B) == 1
    await room.run(A, kudos_commands.redaction, "$react")
    assert await room.score(B) == 0
    await room.run(A, kudos_commands.redaction, "$react")
    assert await room.score(B) == 0
    # Other emoji and self-reactions are no kudos.
    await room.run(A, kudos_commands.reaction, "$post", "👍", event_id="$r2")
    room.room.senders["$mine"] = A
    await room.run(A, kudos_commands.reaction, "$mine", "👏", event_id="$r3")
    assert await room.score(A) == 0 and await room.score(B) == 0


async def test_score_top_why(room):
    await room.say(A, "!kudos @bob:example.org 2 for <i>help</i>")
    await room.say(C, "!kudos @bob:example.org")
    await room.say(B, "!kudos @carol:example.org")
    assert (await room.say(A, "!score Bob")).startswith(f"{B} has 3 kudos in this room")
    top = await room.say(A, "!top")
    assert top.splitlines()[1:] == [f"• 1. {B} — 3", f"• 2. {C} — 1"]
    assert "Top of the last 7 days" in await room.say(A, "!top 5 --days 7")
    why = await room.say(A, "!why @bob:example.org")
    assert why.startswith(f"{B} has 3 kudos:")
    assert f"+2 from {A} (command) — <i>help</i>" in why


async def test_leaderboard_html_never_pings(room):
    await room.say(A, "!kudos @bob:example.org")
    async with room.storage.write() as tx:
        head = await tx.ledger_head(ROOM)
        from commands.dispatch import dispatch

        reply = await dispatch(room.context(tx, A, rules=head.rules), "!top")
    assert reply.ping == ()
    assert B not in to_plain(reply.body)  # the ID is broken by an invisible separator


async def test_erase(room):
    await room.say(A, "!kudos @bob:example.org for a secret")
    async with room.storage.read() as tx:
        seq = (await tx.ledger_head(ROOM)).size
    assert "Only the author" in await room.say(C, f"!erase {seq}")
    assert "Erased the text" in await room.say(A, f"!erase {seq} -- oops")
    assert "no text to erase" in await room.say(A, f"!erase {seq}")
    async with room.storage.read() as tx:
        assert (await tx.entry(ROOM, seq)).text is None
    room.room.levels[C] = 50
    await room.say(A, "!kudos @bob:example.org for another")
    assert "Erased" in await room.say(C, f"!erase {seq + 2}")
    assert "(text erased)" in await room.say(A, "!ledger")


async def test_rooms_are_isolated(storage):
    one, two = Harness(storage, "!one:example.org"), Harness(storage, "!two:example.org")
    await one.start()
    await two.start()
    await one.say(A, "!kudos @bob:example.org 3")
    assert await one.score(B) == 3
    assert await two.score(B) == 0
    assert "no kudos yet" in await two.say(A, "!top")


async def test_verify_signs_a_checkpoint(room):
    await room.say(A, "!kudos @bob:example.org")
    reply = await room.say(A, "!verify")
    assert reply.startswith("Verified: 2 entries since the last checkpoint chain up.")
    assert "commons-checkpoint v1" in reply
    again = await room.say(A, "!verify")
    assert again.startswith("Verified less than a minute ago.")
    await room.say(A, "!kudos @carol:example.org")
    room.now += 61_000
    assert (await room.say(A, "!verify")).startswith("Verified: 1 entries")


async def test_ledger_lists_entries(room):
    await room.say(A, "!kudos @bob:example.org for tea")
    text = await room.say(A, "!ledger")
    assert text.startswith("Ledger: 2 entries, newest last")
    assert f"{A} gave {B} +1 kudos (command) — tea" in text
