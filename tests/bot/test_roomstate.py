import pytest

from bot.roomstate import CREATOR_LEVEL, RoomState, power_level


def member(user_id, membership="join", name=None):
    content = {"membership": membership}
    if name:
        content["displayname"] = name
    return {"type": "m.room.member", "state_key": user_id, "content": content, "sender": user_id}


@pytest.mark.parametrize(
    ("user", "levels", "version", "expected"),
    [
        ("@mod:x", {"users": {"@mod:x": 50}}, "10", 50),
        ("@nobody:x", {"users": {"@mod:x": 50}, "users_default": 5}, "10", 5),
        ("@creator:x", {"users": {}}, "10", 0),
        ("@creator:x", {"users": {}}, "12", CREATOR_LEVEL),
        ("@co:x", {"users": {}}, "12", CREATOR_LEVEL),
        ("@creator:x", None, "10", 100),
        ("@other:x", None, "10", 0),
        ("@mod:x", {"users": {"@mod:x": "bad"}}, "10", 0),
    ],
)
def test_power_level(user, levels, version, expected):
    create = {"room_version": version, "additional_creators": ["@co:x"]}
    assert power_level(user, levels, "@creator:x", create) == expected


def test_state_follows_membership_and_power():
    state = RoomState("!r:x")
    state.apply(member("@a:x", name="Alice"))
    state.apply(member("@b:x"))
    state.apply(member("@b:x", "leave"))
    state.apply({"type": "m.room.message", "content": {}})  # not state: ignored
    state.apply(
        {
            "type": "m.room.create",
            "state_key": "",
            "sender": "@a:x",
            "content": {"room_version": "12"},
        }
    )
    state.apply({"type": "m.room.power_levels", "state_key": "", "content": {"users": {}}})
    state.apply({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "x"}})
    assert state.members == {"@a:x": "Alice"}
    assert state.level_of("@a:x") == CREATOR_LEVEL
    assert state.encrypted
