"""Reading and checking the ledger in chat: `!ledger`, `!verify`, `!export`, `!erase`.

`!verify` re-hashes the entries since the last checkpoint (cheap however long the ledger is),
checks that they extend it, and signs a new checkpoint of the head; anyone can copy that line
and later check an export against it with `commons verify`.
"""

from __future__ import annotations

from collections.abc import Sequence

from commands.context import Context, Head, LedgerRow, StoredCheckpoint
from commands.declare import REGISTRY, Args, Kind, Param, Reason
from commands.errors import UserError
from commands.kudos import check_reason, local_time
from commands.render import Fragment, Reply, bold, bullets, code, italic, lines, seq, user
from consensus.bulk import gc_paused
from consensus.checkpoint import Checkpoint, SignedCheckpoint
from consensus.ledger import ERASE, GENESIS_PREV, LedgerEntry
from consensus.merkle import MerkleFrontier, leaf_hash

MAX_LEDGER_LINES = 50
VERIFY_EVERY_MS = 60_000
ROWS_PER_READ = 10_000


async def require_head(ctx: Context) -> Head:
    head = await ctx.store.ledger_head(ctx.room_id)
    if head is None:
        raise UserError("This room has no ledger yet.")
    return head


@REGISTRY.command(
    name="ledger",
    section="Ledger",
    summary="shows the newest ledger entries",
    params=(Param("n", Kind.INT, required=False),),
    examples=("!ledger", "!ledger 25"),
)
async def ledger(ctx: Context, args: Args) -> Reply:
    n = args.get("n", 10)
    if not 1 <= n <= MAX_LEDGER_LINES:
        raise UserError(f"N must be from 1 to {MAX_LEDGER_LINES}.", help_for="ledger")
    shown = await ctx.store.entries(ctx.room_id, limit=n, newest_first=True)
    items: list[Fragment] = []
    for stored in reversed(shown):
        items.append(describe(stored.entry, stored.text, ctx.rules.timezone))
    head = await ctx.store.ledger_head(ctx.room_id)
    size = head.size if head else 0
    return Reply(lines([bold(f"Ledger: {size} entries, newest last"), bullets(items)]))


def describe(entry: LedgerEntry, text: str | None, timezone: str) -> Fragment:
    """One line for an entry: number, time, who, what."""
    d = entry.data
    what: list[Fragment]
    if entry.kind == "kudos":
        what = ["gave ", user(str(d["to"])), f" +{d['amount']} kudos ({d['via']})"]
    elif entry.kind in ("reversal", "mod.void", "erase"):
        what = [
            {"reversal": "took back", "mod.void": "voided", "erase": "erased the text of"}[
                entry.kind
            ],
            f" #{d['target']}",
        ]
    elif entry.kind == "genesis":
        what = ["started this ledger"]
    elif entry.kind in ("optout", "optin"):
        what = ["opted out of scoring" if entry.kind == "optout" else "opted back in"]
    elif entry.kind in ("rule.change", "mod.override"):
        what = [f"set {d['key']} to {d['value']}"]
    else:
        what = [entry.kind]
    parts: list[Fragment] = [f"#{entry.seq} {local_time(entry.ts, timezone)} ", user(entry.actor)]
    parts += [" ", *what]
    if text:
        parts += [" — ", italic(text)]
    elif d.get("text_sha256"):
        parts.append(" — (text erased)")
    return seq(*parts)


@REGISTRY.command(
    name="verify",
    section="Ledger",
    summary="checks the chain since the last checkpoint and signs the head",
    examples=("!verify",),
)
async def verify(ctx: Context, args: Args) -> Reply:
    head = await require_head(ctx)
    checkpoints = await ctx.store.checkpoints(ctx.room_id)
    last = checkpoints[-1] if checkpoints else None
    if last is not None and ctx.now_ms - last.signed.checkpoint.ts < VERIFY_EVERY_MS:
        if last.signed.checkpoint.size == head.size:
            return _checkpoint_reply(ctx, last.signed, "Verified less than a minute ago")
        raise UserError("I verify at most once a minute per room; please try again shortly.")
    problem = await check_since(ctx, last)
    if problem is not None:
        return Reply(seq(bold("Verification FAILED: "), problem + ". Please tell the operator."))
    signed = await new_checkpoint(ctx)
    checked = head.size - (last.signed.checkpoint.size if last else 0)
    return _checkpoint_reply(
        ctx, signed, f"Verified: {checked} entries since the last checkpoint chain up"
    )


class ChainCheck:
    """Checks entries against a checkpoint, a batch at a time: each must link to the one before,
    and their Merkle leaves, added to the checkpoint's frontier, must give the recorded head.

    Works on `LedgerRow`s, whose hash and canonical bytes the store computed from the rows as
    they are now, so a row changed behind the bot's back breaks the chain or the root.
    """

    def __init__(self, start: int, prev_hash: str | None, frontier: MerkleFrontier) -> None:
        self.start = start  # the checkpoint's size: entries after it are checked
        self.problem: str | None = None
        self._prev_hash = prev_hash
        self._frontier = frontier

    def add(self, rows: Sequence[LedgerRow]) -> None:
        """Check the next entries after the ones checked so far (those up to `start` skipped)."""
        if self.problem is not None:
            return
        prev_hash, append = self._prev_hash, self._frontier.append
        for number, _ts, _actor, _kind, _data, prev, digest, canonical in rows:
            if number <= self.start:
                continue
            if prev != prev_hash:
                self.problem = f"entry {number} does not link to entry {number - 1}"
                return
            prev_hash = digest
            append(leaf_hash(canonical))
        self._prev_hash = prev_hash

    def result(self, head: Head) -> str | None:
        """None when the entries added extend the checkpoint to `head`, else the problem."""
        if self.problem is None and (
            self._frontier.size != head.size or self._frontier.root().hex() != head.root
        ):
            return "the entries do not add up to the recorded head"
        return self.problem


async def chain_check(ctx: Context, last: StoredCheckpoint | None) -> ChainCheck:
    """A check of the entries since checkpoint `last` (all of them if None), yet to be fed."""
    if last is None:
        return ChainCheck(0, GENESIS_PREV, MerkleFrontier())
    start = last.signed.checkpoint.size
    frontier = MerkleFrontier.from_hex(start, last.frontier)
    anchor = await ctx.store.entry(ctx.room_id, start)
    check = ChainCheck(start, anchor.entry.hash() if anchor else None, frontier)
    if frontier.root().hex() != last.signed.checkpoint.root:
        check.problem = f"the stored checkpoint at {start} does not match its own Merkle state"
    return check


async def check_since(ctx: Context, last: StoredCheckpoint | None) -> str | None:
    """Whether the entries since checkpoint `last` (all of them if None) extend it to the
    recorded head (see `ChainCheck`). None when they do, else the problem."""
    head = await ctx.store.ledger_head(ctx.room_id)
    if head is None:
        return "this room has no ledger"
    check = await chain_check(ctx, last)
    after = check.start
    with gc_paused():
        while check.problem is None:
            rows = await ctx.store.ledger_rows(ctx.room_id, after=after, limit=ROWS_PER_READ)
            if not rows:
                break
            check.add(rows)
            after = rows[-1][0]
    return check.result(head)


async def new_checkpoint(ctx: Context) -> SignedCheckpoint:
    """Sign and keep a checkpoint of the room's ledger as it is now."""
    head = await require_head(ctx)
    cp = Checkpoint(room=ctx.room_id, size=head.size, root=head.root, ts=ctx.now_ms)
    signed = SignedCheckpoint.create(cp, ctx.services.signing_key)
    await ctx.store.add_checkpoint(signed, list(head.frontier))
    return signed


def _checkpoint_reply(ctx: Context, signed: SignedCheckpoint, title: str) -> Reply:
    cp = signed.checkpoint
    return Reply(
        lines(
            [
                bold(title + "."),
                f"Entries: {cp.size}; Merkle root: {cp.root}",
                f"Bot key: {signed.key}",
                "Keep this signed checkpoint; `commons verify FILE --checkpoint '…'` checks an "
                "export against it:",
                code(signed.to_text()),
            ]
        )
    )


@REGISTRY.command(
    name="export",
    section="Ledger",
    summary="uploads the room's ledger as a file anyone can verify",
    examples=("!export",),
)
async def export(ctx: Context, args: Args) -> Reply:
    head = await require_head(ctx)
    return Reply(
        seq(
            f"Exporting the ledger ({head.size} entries) as a JSON Lines file; check it with "
            "`commons verify FILE`."
        ),
        export_size=head.size,
    )


@REGISTRY.command(
    name="erase",
    section="Ledger",
    summary="removes the free text of an entry (its hash stays, so the chain still verifies)",
    params=(Param("seq", Kind.SEQ),),
    reason=Reason.OPTIONAL,
    examples=("!erase 42", "!erase 42 -- posted by mistake"),
    details="The entry's author or a moderator can erase it.",
)
async def erase(ctx: Context, args: Args) -> Reply:
    seq_no = int(args.get("seq"))
    found = await ctx.store.entry(ctx.room_id, seq_no)
    if found is None:
        raise UserError(f"There is no entry #{seq_no} in this room's ledger.")
    if found.text is None:
        raise UserError(f"Entry #{seq_no} has no text to erase.")
    if found.entry.actor != ctx.sender:
        level = await ctx.room.power_level(ctx.sender)
        if level < ctx.moderator_level:
            raise UserError(
                f"Only the author of entry #{seq_no} or a moderator can erase its text."
            )
    reason = check_reason(args.reason)
    await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=ERASE,
        data={"target": seq_no, "text_sha256": None},
        event=ctx.event_id,
        text=reason,
        salt=ctx.services.new_salt() if reason is not None else None,
    )
    await ctx.store.erase_text(ctx.room_id, seq_no)
    return Reply(seq(f"Erased the text of entry #{seq_no}; its hash stays in the ledger."))
