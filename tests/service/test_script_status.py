"""The statuses the Lua scripts answer with and the Python table of them are one set."""

from __future__ import annotations

import re
from importlib.resources import files

from replay_service.service.storage.status import Status

# A reply is a table whose first item is its status, a quoted word: {'gone'}, {'ok', ...}.
STATUS_LITERAL = re.compile(r"\{\s*'([A-Za-z_]+)'")
# What replies looked like before the statuses had names: {1}, {0, first, ...}.
NUMBERED_REPLY = re.compile(r"return\s*\{\s*-?\d")


def lua_sources() -> dict[str, str]:
    lua = files("replay_service.service.storage").joinpath("lua")
    return {entry.name: entry.read_text() for entry in lua.iterdir()
            if entry.name.endswith(".lua")}


def test_every_status_a_script_returns_is_in_the_table_and_every_one_is_returned() -> None:
    sources = lua_sources()
    assert {"insert.lua", "meta.lua", "create.lua"} <= set(sources)
    returned = {word for text in sources.values() for word in STATUS_LITERAL.findall(text)}
    assert returned == {status.value.decode() for status in Status}


def test_no_script_answers_with_a_bare_number_for_a_status() -> None:
    assert {name: NUMBERED_REPLY.findall(text) for name, text in lua_sources().items()
            if NUMBERED_REPLY.search(text)} == {}
