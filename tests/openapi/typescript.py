"""TypeScript sources that type JSON values against types generated from the document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.openapi.node import npm_bin, run

TSCONFIG = {"compilerOptions": {"strict": True, "noEmit": True, "target": "ES2022",
                                "module": "ESNext", "moduleResolution": "Bundler",
                                "skipLibCheck": True, "types": []}}
_ERROR = re.compile(r"^(?P<file>[\w.]+)\((?P<line>\d+),\d+\): error (?P<text>.*)$",
                    re.MULTILINE)


def request_body(path: str, method: str) -> str:
    return (f'NonNullable<paths["{path}"]["{method}"]["requestBody"]>["content"]'
            '["application/json"]')


def answer(path: str, method: str, status: int = 200) -> str:
    return f'paths["{path}"]["{method}"]["responses"][{status}]["content"]["application/json"]'


def source(typed_values: list[tuple[str, Any]]) -> str:
    """One declaration per line, after one import line: value i sits on line i + 2."""
    lines = ['import type { components, paths } from "./api";']
    lines += [f"export const value{i}: {type_} = {json.dumps(value)};"
              for i, (type_, value) in enumerate(typed_values)]
    return "\n".join(lines) + "\n"


def generate_types(document: Path, folder: Path, modules: Path) -> None:
    generated = run([*npm_bin(modules, "openapi-typescript"), str(document), "-o",
                     str(folder / "api.d.ts")], cwd=folder)
    assert generated.returncode == 0, generated.stdout + generated.stderr


def type_check(folder: Path, modules: Path, files: dict[str, str]) -> dict[str, dict[int, str]]:
    """Run tsc over `files`; the errors it reports, by file and line."""
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "tsconfig.json").write_text(json.dumps(
        {**TSCONFIG, "files": ["api.d.ts", *files]}))
    checked = run([*npm_bin(modules, "tsc"), "-p", "tsconfig.json", "--pretty", "false"],
                  cwd=folder)
    found: dict[str, dict[int, str]] = {name: {} for name in files}
    for error in _ERROR.finditer(checked.stdout):
        found.setdefault(error["file"], {})[int(error["line"])] = error["text"]
    assert checked.returncode == 0 or any(found.values()), checked.stdout + checked.stderr
    return found
