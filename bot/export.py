"""Writing a room's ledger as JSON Lines (SPEC "Export and verify"): one line per entry with its
text and salt, then the signed checkpoints. The line format comes from `consensus.verify`, the
same module that reads it back, so writer and verifier cannot drift apart.
"""

from __future__ import annotations

from typing import BinaryIO

from bot.storage import Storage
from consensus.verify import checkpoint_line, encode_line, export_line

BATCH = 5_000


async def write_export(storage: Storage, room: str, out: BinaryIO, size: int | None = None) -> int:
    """Write entries 1..size (all when None) and the checkpoints within; return the count."""
    written = 0
    after = 0
    while size is None or after < size:
        limit = BATCH if size is None else min(BATCH, size - after)
        async with storage.read() as tx:
            batch = await tx.entries(room, after=after, limit=limit)
        if not batch:
            break
        for stored in batch:
            out.write(encode_line(export_line(stored.entry, stored.text, stored.salt)))
        written += len(batch)
        after = batch[-1].entry.seq
    async with storage.read() as tx:
        checkpoints = await tx.checkpoints(room)
    for cp in checkpoints:
        if cp.signed.checkpoint.size <= written:
            out.write(encode_line(checkpoint_line(cp.signed)))
    return written
