"""The text tool-call protocol of SWE trajectories: one action per model turn, in a fenced block, e.g.

    ```read
    src/gcd.py
    ```
    ```search
    def gcd
    ```
    ```edit src/gcd.py
    <<<
    return a % b
    ===
    return gcd(b, a % b)
    >>>
    ```
    ```write path/new_file.py
    <the whole file>
    ```
    ```run
    ```            (the tests; or `run python3 -c "..."` for a command)
    ```done
    ```

Parsing is tolerant, because small local models are sloppy: `<<<<<<< SEARCH / ======= / >>>>>>> REPLACE` markers work
too, as does a JSON object ({"tool": "edit", "path": ..., "old": ..., "new": ...}), an action word at the start of a
line (`READ src/gcd.py`), and — the most common answer of a small model — a ```python block holding a fixed version
of a function of the repo (it replaces that function).
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, Field

from ._workcopy import ToolError

TOOLS = ("read", "search", "edit", "write", "run", "done")

PROTOCOL = """Reply with exactly one action, in a fenced block whose first word names the tool.
The simplest way to fix a function: reply with the whole corrected function in a ```python block; it replaces
the function of the same name. Other tools:
```read
PATH
```
```search
TEXT OR REGEX
```
```edit PATH
<<<
EXACT OLD LINES
===
NEW LINES
>>>
```
```write PATH
WHOLE NEW FILE CONTENT
```
```run
```
(runs the tests; `run COMMAND` runs a command instead)
```done
```"""

_FENCE = re.compile(r"```[ \t]*([^\n`]*)\n?(.*?)```", re.DOTALL)
_OPEN_FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*)$", re.DOTALL)  # an unclosed last block (cut by max_tokens)
_EDIT = re.compile(r"^<{3,}[^\n]*\n(.*?)\n?^={3,}[^\n]*\n(.*?)\n?(?:^>{3,}|\Z)", re.DOTALL | re.MULTILINE)
_LINE = re.compile(r"^\s*(read|search|run|done)\b[:\s]*(.*)$", re.IGNORECASE | re.MULTILINE)


class Action(BaseModel):
    tool: str  # read | search | edit | write | run | done | rewrite
    path: str = ""
    text: str = ""  # search pattern, run command, write content, rewrite source
    old: str = ""
    new: str = ""
    args: dict = Field(default_factory=dict)


def parse_action(reply: str) -> Action:
    """The one action a reply asks for. Raises ToolError (with how to fix it) when it names none."""
    blocks = _FENCE.findall(reply)
    if not blocks:
        m = _OPEN_FENCE.search(reply)
        if m:
            blocks = [(m.group(1), m.group(2))]
    python_blocks = []
    for info, body in blocks:
        words = info.strip().split(None, 1)
        head = words[0].lower() if words else ""
        rest = words[1].strip() if len(words) > 1 else ""
        if head in TOOLS:
            return _from_block(head, rest, body)
        if head in ("", "json") and body.strip().startswith("{"):
            action = _from_json(body)
            if action:
                return action
        if head in ("", "python", "py"):
            python_blocks.append(body)
    action = _from_json(reply)
    if action:
        return action
    m = _LINE.search(_FENCE.sub("", reply))
    if m:
        return _from_block(m.group(1).lower(), m.group(2).strip(), "")
    if python_blocks:
        return Action(tool="rewrite", text=python_blocks[0])
    raise ToolError("no action found in your reply.\n" + PROTOCOL)


def _from_block(tool: str, rest: str, body: str) -> Action:
    body_clean = body.strip("\n")
    if tool == "read":
        target = (rest or body_clean).strip().split("\n")[0].strip()
        m = re.match(r"(\S+)(?:\s+(\d+)\s*[-:]\s*(\d+))?", target)
        if not m:
            raise ToolError("read needs a path:\n```read\nPATH\n```")
        args = {"start": int(m.group(2)), "end": int(m.group(3))} if m.group(2) else {}
        return Action(tool="read", path=m.group(1), args=args)
    if tool == "search":
        return Action(tool="search", text=(rest or body_clean).strip())
    if tool == "run":
        return Action(tool="run", text=(rest or body_clean).strip())
    if tool == "done":
        return Action(tool="done")
    path = rest
    if not path:  # path on the first line of the body
        first, _, body_clean = body_clean.partition("\n")
        path = first.strip()
    if not path:
        raise ToolError(f"{tool} needs a path: ```{tool} PATH")
    if tool == "write":
        return Action(tool="write", path=path, text=body_clean + "\n")
    m = _EDIT.search(body_clean)
    if not m:
        raise ToolError("edit needs the old and the new text:\n```edit PATH\n<<<\nEXACT OLD LINES\n===\nNEW LINES\n>>>\n```")
    return Action(tool="edit", path=path, old=m.group(1), new=m.group(2))


def _from_json(text: str) -> Action | None:
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            tool = str(obj.get("tool") or obj.get("action") or obj.get("name") or "").lower()
            if tool in TOOLS:
                return Action(tool=tool, path=str(obj.get("path") or obj.get("file") or ""),
                              text=str(obj.get("pattern") or obj.get("query") or obj.get("command")
                                       or obj.get("content") or ""),
                              old=str(obj.get("old") or obj.get("search") or ""),
                              new=str(obj.get("new") or obj.get("replace") or ""))
        return None
    return None
