"""RFC 6962 Merkle hashing, checked against a naive recursive transcription of the RFC's
definitions and against the RFC's published test-vector roots."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import merkle
from consensus.merkle import EMPTY_ROOT, MerkleFrontier, MerkleTree, frontier_after


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- the RFC's definitions, written as literally as possible ---------------------------------


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = largest_power_of_two_below(len(leaves))
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = largest_power_of_two_below(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


MAX_N = 70
LEAVES = leaves_of(MAX_N)
TREE = MerkleTree()
for _leaf in LEAVES:
    TREE.append(_leaf)


# The leaves and roots of the RFC 6962 test vectors (as used by Certificate Transparency).
RFC_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_leaf_and_node_hashes_use_the_rfc_prefixes() -> None:
    assert merkle.leaf_hash(b"abc") == sha(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == sha(b"\x01" + b"L" * 32 + b"R" * 32)
    assert sha(b"").hex() == EMPTY_ROOT.hex()


@pytest.mark.parametrize("size", range(1, len(RFC_INPUTS) + 1))
def test_rfc_6962_test_vector_roots(size: int) -> None:
    leaves = [merkle.leaf_hash(data) for data in RFC_INPUTS[:size]]
    assert merkle.root(leaves).hex() == RFC_ROOTS[size - 1]


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert merkle.root([]) == EMPTY_ROOT
    assert MerkleFrontier().root() == EMPTY_ROOT
    assert MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_every_way_to_hold_a_tree_gives_the_naive_root(n: int) -> None:
    expected = mth(LEAVES[:n])
    frontier = MerkleFrontier()
    for leaf in LEAVES[:n]:
        frontier.append(leaf)
    assert merkle.root(LEAVES[:n]) == expected
    assert frontier.root() == expected
    assert frontier.size == n
    assert TREE.root(n) == expected


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_proofs_match_the_rfc_and_verify(n: int) -> None:
    root = mth(LEAVES[:n])
    for index in range(n):
        proof = merkle.inclusion_proof(index, LEAVES[:n])
        assert proof == path(index, LEAVES[:n])
        assert TREE.inclusion_proof(index, n) == proof
        assert merkle.verify_inclusion(LEAVES[index], index, n, proof, root)


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_consistency_proofs_match_the_rfc_and_verify(n: int) -> None:
    root_n = mth(LEAVES[:n])
    for m in range(n + 1):
        proof = merkle.consistency_proof(m, LEAVES[:n])
        assert proof == ([] if m == 0 else subproof(m, LEAVES[:n], True))
        assert TREE.consistency_proof(m, n) == proof
        assert merkle.verify_consistency(m, n, mth(LEAVES[:m]), root_n, proof)


def test_whole_tree_is_the_default_size() -> None:
    assert TREE.size == MAX_N
    assert TREE.root() == mth(LEAVES)
    assert TREE.inclusion_proof(3) == path(3, LEAVES)
    assert TREE.consistency_proof(5) == subproof(5, LEAVES, True)


sizes = st.integers(min_value=1, max_value=MAX_N).flatmap(
    lambda n: st.tuples(st.integers(min_value=1, max_value=n), st.just(n))
)


def tamper(proof: list[bytes], data: st.DataObject) -> list[bytes]:
    """One change to a proof: a flipped bit, a dropped, added or duplicated hash."""
    choices = ["add"]
    if proof:
        choices += ["flip", "drop", "duplicate"]
    how = data.draw(st.sampled_from(choices))
    if how == "add":
        at = data.draw(st.integers(0, len(proof)))
        return [*proof[:at], sha(b"extra"), *proof[at:]]
    at = data.draw(st.integers(0, len(proof) - 1))
    if how == "flip":
        bit = data.draw(st.integers(0, 255))
        changed = bytearray(proof[at])
        changed[bit // 8] ^= 1 << (bit % 8)
        return [*proof[:at], bytes(changed), *proof[at + 1 :]]
    if how == "drop":
        return proof[:at] + proof[at + 1 :]
    return [*proof[: at + 1], proof[at], *proof[at + 1 :]]


@given(sizes, st.data())
def test_a_tampered_consistency_proof_fails(mn: tuple[int, int], data: st.DataObject) -> None:
    m, n = mn
    root_m, root_n = mth(LEAVES[:m]), mth(LEAVES[:n])
    proof = tamper(merkle.consistency_proof(m, LEAVES[:n]), data)
    assert not merkle.verify_consistency(m, n, root_m, root_n, proof)


@given(sizes, st.data())
def test_a_tampered_inclusion_proof_fails(mn: tuple[int, int], data: st.DataObject) -> None:
    index, n = mn[0] - 1, mn[1]
    proof = tamper(merkle.inclusion_proof(index, LEAVES[:n]), data)
    assert not merkle.verify_inclusion(LEAVES[index], index, n, proof, mth(LEAVES[:n]))


@given(sizes)
def test_consistency_fails_for_other_roots_or_sizes(mn: tuple[int, int]) -> None:
    m, n = mn
    root_m, root_n = mth(LEAVES[:m]), mth(LEAVES[:n])
    other = sha(b"other")
    proof = merkle.consistency_proof(m, LEAVES[:n])
    assert not merkle.verify_consistency(m, n, other, root_n, proof)
    assert not merkle.verify_consistency(m, n, root_m, other, proof)
    if m < n:
        assert not merkle.verify_consistency(m, n, root_m, mth(LEAVES[: n - 1]), proof)
        assert not merkle.verify_consistency(m, n, mth(LEAVES[: m + 1]), root_n, proof)


@given(sizes)
def test_inclusion_fails_for_another_leaf_index_or_root(mn: tuple[int, int]) -> None:
    index, n = mn[0] - 1, mn[1]
    proof = merkle.inclusion_proof(index, LEAVES[:n])
    root = mth(LEAVES[:n])
    assert not merkle.verify_inclusion(sha(b"other"), index, n, proof, root)
    assert not merkle.verify_inclusion(LEAVES[index], index, n, proof, sha(b"other"))
    if n > 1:
        other_index = (index + 1) % n
        assert not merkle.verify_inclusion(LEAVES[index], other_index, n, proof, root)


@pytest.mark.parametrize(
    ("m", "n", "root_m", "root_n", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 5, EMPTY_ROOT, b"x" * 32, [], True),  # everything extends the empty tree
        (0, 5, b"y" * 32, b"x" * 32, [], False),
        (0, 5, EMPTY_ROOT, b"x" * 32, [b"z" * 32], False),
        (3, 3, b"x" * 32, b"x" * 32, [], True),
        (3, 3, b"x" * 32, b"y" * 32, [], False),
        (3, 3, b"x" * 32, b"x" * 32, [b"x" * 32], False),
        (4, 3, b"x" * 32, b"x" * 32, [], False),
        (-1, 3, b"x" * 32, b"x" * 32, [], False),
        (2, 5, b"x" * 32, b"y" * 32, [], False),  # a real extension needs a proof
    ],
)
def test_consistency_edge_cases(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: list[bytes], ok: bool
) -> None:
    assert merkle.verify_consistency(m, n, root_m, root_n, proof) is ok


def test_inclusion_outside_the_tree_fails() -> None:
    assert not merkle.verify_inclusion(LEAVES[0], 5, 5, [], mth(LEAVES[:5]))
    assert not merkle.verify_inclusion(LEAVES[0], -1, 5, [], mth(LEAVES[:5]))


def test_proof_requests_outside_the_tree_are_refused() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_proof(3, LEAVES[:3])
    with pytest.raises(ValueError, match="no prefix"):
        merkle.consistency_proof(4, LEAVES[:3])
    with pytest.raises(ValueError, match="not in a tree"):
        TREE.inclusion_proof(10, 10)
    with pytest.raises(ValueError, match="no prefix"):
        TREE.consistency_proof(11, 10)
    with pytest.raises(ValueError, match="not 71"):
        TREE.root(MAX_N + 1)
    with pytest.raises(ValueError, match="not -1"):
        TREE.root(-1)


@pytest.mark.parametrize("holder", [MerkleFrontier, MerkleTree])
def test_leaf_hashes_must_be_32_bytes(holder: type[MerkleFrontier | MerkleTree]) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        holder().append(b"short")


@given(st.integers(0, MAX_N), st.integers(0, 20))
def test_frontier_survives_serialisation(n: int, more: int) -> None:
    frontier = MerkleFrontier()
    for leaf in LEAVES[:n]:
        frontier.append(leaf)
    hashes = frontier.to_hex()
    assert len(hashes) == n.bit_count()
    assert all(isinstance(h, str) and len(h) == 64 for h in hashes)
    restored = MerkleFrontier.from_hex(n, hashes)
    assert restored.size == n
    assert restored.root() == frontier.root()
    extra = leaves_of(n + more)[n:]
    for leaf in extra:
        restored.append(leaf)
    assert restored.root() == mth(LEAVES[:n] + extra)


@given(st.integers(0, MAX_N), st.integers(0, 20))
def test_frontier_after_is_append_on_nodes(n: int, more: int) -> None:
    frontier, nodes = MerkleFrontier(), ()
    for size, leaf in enumerate(leaves_of(n + more)):
        nodes = frontier_after(size, nodes, leaf)
        frontier.append(leaf)
        assert nodes == frontier.nodes()
    assert MerkleFrontier.from_nodes(n + more, nodes).root() == mth(leaves_of(n + more))
    with pytest.raises(ValueError, match="32 bytes"):
        frontier_after(n + more, nodes, b"short")


@pytest.mark.parametrize(
    ("size", "hashes", "message"),
    [
        (3, ["00" * 32], "has 2 hashes"),
        (-1, [], "has 0 hashes"),
        (1, ["00" * 31], "32 bytes"),
    ],
)
def test_frontier_refuses_a_bad_serialisation(size: int, hashes: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MerkleFrontier.from_hex(size, hashes)


# --- building a tree in bulk --------------------------------------------------------------------

batches = st.lists(st.integers(0, 20), max_size=6)


def appended(n: int) -> MerkleTree:
    tree = MerkleTree()
    for leaf in LEAVES[:n]:
        tree.append(leaf)
    return tree


@given(batches, st.data())
def test_extending_in_batches_builds_the_tree_leaf_by_leaf_would(
    sizes: list[int], data: st.DataObject
) -> None:
    """With the inner nodes worked out apart (as a worker process does) or without."""
    tree, done = MerkleTree(), 0
    for size in sizes:
        batch = b"".join(LEAVES[done : done + size])
        if data.draw(st.booleans()):
            tree.extend(batch, merkle.inner_nodes(batch, done))
        else:
            tree.extend(batch)
        done += len(batch) // 32
        expected = appended(done)
        assert tree.size == expected.size
        assert tree._levels == expected._levels  # every stored subtree, not only the root
        assert tree.root() == mth(LEAVES[:done])


def test_inner_nodes_are_the_subtrees_wholly_among_the_leaves() -> None:
    leaves = b"".join(LEAVES[3:12])  # leaves 3 to 11 of a log
    inner = merkle.inner_nodes(leaves, 3)
    assert inner.offset == 3
    assert (
        inner.levels
        == [  # leaf 3's sibling is before them; no subtree of 8 fits
            b"".join(mth(LEAVES[i : i + 2]) for i in (4, 6, 8, 10)),
            b"".join(mth(LEAVES[i : i + 4]) for i in (4, 8)),
        ]
    )
    assert merkle.inner_nodes(LEAVES[5], 5).levels == []
    assert merkle.inner_nodes(b"", 7).levels == []


def test_extend_refuses_inner_nodes_of_other_leaves() -> None:
    tree = appended(5)
    batch = b"".join(LEAVES[5:12])
    with pytest.raises(ValueError, match="from 4, not 5"):
        tree.extend(batch, merkle.inner_nodes(batch, 4))
    with pytest.raises(ValueError, match="32 bytes each"):
        tree.extend(b"short")
    assert tree.size == 5
