"""Merkle tree hashing as RFC 6962 (Certificate Transparency) defines it, also RFC 9162 §2.1.

Pure. A leaf is SHA-256(0x00 ‖ data), an inner node SHA-256(0x01 ‖ left ‖ right), and the tree
over n leaves splits at the largest power of two below n, so the tree of the first m leaves is
part of the tree of the first n: consistency proofs show that a later root extends an earlier
one, inclusion proofs that a leaf is in a tree. The empty tree's root is SHA-256 of nothing.

Three ways to hold a tree: a sequence of leaf hashes (the functions; O(n) per call),
`MerkleFrontier` (O(log n) state: the root of an append-only log without re-reading it) and
`MerkleTree` (every complete subtree kept, ~64 bytes per leaf: roots and proofs for any earlier
size in O(log n), which is what a verifier of many checkpoints needs). A MerkleTree grows by
one leaf or by many at once; the subtrees wholly among new leaves (`inner_nodes`) don't depend
on the leaves before, so they may be hashed elsewhere, e.g. in another process.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A subtree hash provider: the root of leaves [lo, hi), for the ranges RFC 6962 recursion visits.
_RangeHash = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2): where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold(subtrees: Sequence[bytes]) -> bytes:
    """Combine the roots of a tree's perfect subtrees, largest (leftmost) first, into its root."""
    if not subtrees:
        return EMPTY_ROOT
    result = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        result = node_hash(left, result)
    return result


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of the leaves (each already a leaf hash)."""
    frontier = MerkleFrontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


def _parents(children: bytes | bytearray) -> bytes:
    """The node hashes over each pair of `children` (node hashes, one after the other)."""
    pair = 2 * HASH_SIZE
    return b"".join(
        [
            hashlib.sha256(b"\x01" + children[at : at + pair]).digest()
            for at in range(0, len(children), pair)
        ]
    )


class InnerNodes(NamedTuple):
    """The roots of the perfect subtrees that lie wholly among some leaves of a log, from the
    leaf at `offset` on: they don't depend on the leaves before, so they can be worked out apart
    from the tree (see `inner_nodes`) and given to MerkleTree.extend."""

    offset: int
    levels: list[bytes]  # level 1 (over pairs of leaves) up: its nodes one after the other


def inner_nodes(leaves: bytes, offset: int) -> InnerNodes:
    """The InnerNodes of `leaves` (leaf hashes, one after the other), from leaf `offset` on."""
    levels: list[bytes] = []
    level, first = leaves, offset  # the nodes of a level, and the index of the first one
    while True:
        skip = first % 2  # a first node that is a right child has its sibling before `offset`
        pairs = (len(level) // HASH_SIZE - skip) // 2
        if pairs < 1:
            return InnerNodes(offset, levels)
        level = _parents(level[skip * HASH_SIZE : (skip + 2 * pairs) * HASH_SIZE])
        levels.append(level)
        first = (first + skip) // 2


def _inclusion_path(index: int, lo: int, hi: int, range_hash: _RangeHash) -> list[bytes]:
    path: list[bytes] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k))
            lo += k
    path.reverse()  # the RFC lists the path from the leaf up
    return path


def _consistency_path(m: int, n: int, range_hash: _RangeHash) -> list[bytes]:
    if m == 0 or m == n:
        return []
    path: list[bytes] = []
    lo, hi, whole = 0, n, True  # `whole`: the old tree's root is still this subtree's root
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(range_hash(lo, hi))
    path.reverse()
    return path


def _sequence_range_hash(leaf_hashes: Sequence[bytes]) -> _RangeHash:
    return lambda lo, hi: root(leaf_hashes[lo:hi])


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `leaf_hashes` (RFC 6962 §2.1.1)."""
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaf_hashes)} leaves")
    return _inclusion_path(index, 0, len(leaf_hashes), _sequence_range_hash(leaf_hashes))


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Proof that the tree of the first m leaves is a prefix of the whole (RFC 6962 §2.1.2)."""
    if not 0 <= m <= len(leaf_hashes):
        raise ValueError(f"a tree of {len(leaf_hashes)} leaves has no prefix of {m}")
    return _consistency_path(m, len(leaf_hashes), _sequence_range_hash(leaf_hashes))


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether `proof` shows `leaf` at `index` in the tree of `size` leaves with `root_hash`.

    RFC 9162 §2.1.3.2.
    """
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            fn, sn = _shift_while_even(fn, sn)
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root_hash


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of size m with `root_m` is a prefix of size n's `root_n`.

    RFC 9162 §2.1.4.2, plus the trivial cases: equal sizes need equal roots and an empty proof;
    every tree extends the empty tree.
    """
    if not 0 <= m <= n:
        return False
    if m == n or m == 0:
        return not proof and (root_m == root_n if m == n else root_m == EMPTY_ROOT)
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # a perfect old tree is itself a node of the new one
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n


class MerkleFrontier:
    """The roots of the perfect subtrees of an append-only log: its root in O(log n) memory.

    Serialise with `size` and `to_hex()` (or `nodes()`); restore with `from_hex(size, hashes)`
    (or `from_nodes`).
    """

    def __init__(self) -> None:
        self._size = 0
        self._subtrees: list[bytes] = []  # largest (leftmost) first, one per set bit of size

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        _push(self._subtrees, self._size, leaf)
        self._size += 1

    def root(self) -> bytes:
        return _fold(self._subtrees)

    def to_hex(self) -> list[str]:
        return [h.hex() for h in self._subtrees]

    def nodes(self) -> tuple[bytes, ...]:
        """The subtree roots, largest first: `from_nodes(size, nodes())` is this frontier."""
        return tuple(self._subtrees)

    @classmethod
    def from_hex(cls, size: int, hashes: Sequence[str]) -> MerkleFrontier:
        return cls.from_nodes(size, [bytes.fromhex(h) for h in hashes])

    @classmethod
    def from_nodes(cls, size: int, nodes: Sequence[bytes]) -> MerkleFrontier:
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {max(size, 0).bit_count()} hashes")
        if any(len(h) != HASH_SIZE for h in nodes):
            raise ValueError("a frontier hash is 32 bytes")
        frontier = cls()
        frontier._size, frontier._subtrees = size, list(nodes)
        return frontier


def frontier_after(size: int, nodes: Sequence[bytes], leaf: bytes) -> tuple[bytes, ...]:
    """The frontier (`MerkleFrontier.nodes`) after appending `leaf` to the frontier of `size`
    leaves with these `nodes`, which must be one (they are not checked again: the ledger head
    appends this way once per entry)."""
    kept = list(nodes)
    _push(kept, size, leaf)
    return tuple(kept)


def _push(subtrees: list[bytes], size: int, leaf: bytes) -> None:
    """Append `leaf` to the subtree roots of a frontier of `size` leaves, in place."""
    if len(leaf) != HASH_SIZE:
        raise ValueError("a leaf hash is 32 bytes")
    node = leaf
    while size & 1:  # each trailing 1 bit of the old size is a subtree the new leaf completes
        node = node_hash(subtrees.pop(), node)
        size >>= 1
    subtrees.append(node)


class MerkleTree:
    """An append-only tree that keeps every perfect subtree, so the root, inclusion and
    consistency proofs of any earlier size cost O(log n) hashes."""

    def __init__(self) -> None:
        self._size = 0
        # levels[j] holds the roots of the perfect subtrees of 2**j leaves, left to right.
        self._levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        levels[0] += leaf
        n, j = self._size, 0
        while n & 1:  # the new node completes a pair: its parent is the last two nodes' hash
            parent = hashlib.sha256(b"\x01" + levels[j][-2 * HASH_SIZE :]).digest()
            j += 1
            if j == len(levels):
                levels.append(bytearray())
            levels[j] += parent
            n >>= 1
        self._size += 1

    def extend(self, leaves: bytes, inner: InnerNodes | None = None) -> None:
        """`append` each of `leaves` (32-byte leaf hashes, one after the other): the same tree,
        built a level at a time, with one loop per level instead of one per leaf.

        `inner`: `inner_nodes(leaves, self.size)` if the caller has it (e.g. from a worker
        process), so that only the nodes over both old and new leaves are hashed here.
        """
        if len(leaves) % HASH_SIZE:
            raise ValueError("leaf hashes are 32 bytes each")
        if inner is not None and inner.offset != self._size:
            raise ValueError(
                f"the inner nodes are for leaves from {inner.offset}, not {self._size}"
            )
        given_levels = inner.levels if inner else []
        levels = self._levels
        levels[0] += leaves
        self._size += len(leaves) // HASH_SIZE
        for j in itertools.count(1):
            due = self._size >> j  # level j holds one node per pair of nodes below
            if j == len(levels):
                if not due:
                    return
                levels.append(bytearray())
            level, have = levels[j], len(levels[j]) // HASH_SIZE
            if have == due:
                return  # no new node here, so none above either
            given = given_levels[j - 1] if j <= len(given_levels) else b""
            first_given = due - len(given) // HASH_SIZE
            level += _parents(levels[j - 1][2 * have * HASH_SIZE : 2 * first_given * HASH_SIZE])
            level += given

    def _range_hash(self, lo: int, hi: int) -> bytes:
        # Every range RFC 6962 recursion visits starts at a multiple of a power of two at least
        # its length, so it is a run of stored perfect subtrees of decreasing size.
        subtrees = []
        while lo < hi:
            j = (hi - lo).bit_length() - 1
            start = (lo >> j) * HASH_SIZE
            subtrees.append(bytes(self._levels[j][start : start + HASH_SIZE]))
            lo += 1 << j
        return _fold(subtrees)

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"the tree has {self._size} leaves, not {size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first `size` leaves (default: all)."""
        return self._range_hash(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        n = self._check_size(size)
        if not 0 <= index < n:
            raise ValueError(f"leaf {index} is not in a tree of {n} leaves")
        return _inclusion_path(index, 0, n, self._range_hash)

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        n = self._check_size(n)
        if not 0 <= m <= n:
            raise ValueError(f"a tree of {n} leaves has no prefix of {m}")
        return _consistency_path(m, n, self._range_hash)
