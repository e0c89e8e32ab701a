"""The JSON bodies of the README's HTTP examples, read from the README itself."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

README = Path(__file__).parents[2] / "README.md"
SECTION = "## From any language: the HTTP API"

_CURL = re.compile(r"^curl (?P<args>.*?)(?=^curl |\Z)", re.MULTILINE | re.DOTALL)
_METHOD = re.compile(r"-X (\w+)")
_URL = re.compile(r"'?localhost:\d+(/[^'\s?]*)")
_BODY = re.compile(r"-d '(.*?)'", re.DOTALL)
_ANSWER = re.compile(r"^# (\{.*\})$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    method: str
    path: str
    body: Any | None
    answer: Any | None
    """The answer the README shows after the command, when it is whole JSON."""


def http_examples() -> list[Example]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    examples = []
    for match in _CURL.finditer(text[start:end if end != -1 else len(text)]):
        command = match["args"].split("```")[0]
        method = _METHOD.search(command)
        url = _URL.search(command)
        assert url is not None, f"a README curl command without a URL: {command!r}"
        body = _BODY.search(command)
        answer = _ANSWER.search(command)
        examples.append(Example(
            method=method[1] if method else "GET", path=url[1],
            body=json.loads(body[1]) if body else None,
            answer=_whole_json(answer[1]) if answer else None))
    return examples


def _whole_json(text: str) -> Any | None:
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # shortened with "...": shows the shape, not a value
        return None
