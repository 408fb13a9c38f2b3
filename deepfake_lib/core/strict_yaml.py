"""YAML for settings files, read strictly: safe types only, no aliases (a few hundred bytes of nested aliases
expand to gigabytes), no duplicate keys (the second would silently win). Problems name the line."""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1_000_000  # a settings file is a few hundred bytes; anything this large is not one


class StrictYamlError(ValueError):
    """YAML that is refused: ``line`` (1-based, or None) and what is wrong."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(f"line {line}: {problem}" if line else problem)
        self.line = line
        self.problem = problem


def load_strict(text: str) -> tuple[Any, yaml.Node | None]:
    """``text`` as plain Python values (``yaml.safe_load``) and its root node (for line numbers), after refusing
    aliases and duplicate keys; ``StrictYamlError`` for those and for text that is not YAML."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise StrictYamlError(None, f"more than {MAX_BYTES:,} bytes, which no settings file needs")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise StrictYamlError(
                    event.start_mark.line + 1, f"alias *{event.anchor}: aliases are not allowed, write the value out"
                )
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _refuse_duplicate_keys(root)
        return yaml.safe_load(text), root
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StrictYamlError(mark.line + 1 if mark is not None else None, f"not valid YAML ({problem})") from None


def _refuse_duplicate_keys(node: yaml.Node | None) -> None:
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    ident = (key.tag, key.value)
                    if ident in seen:
                        raise StrictYamlError(
                            key.start_mark.line + 1, f"duplicate key {key.value!r} (first at line {seen[ident]})"
                        )
                    seen[ident] = key.start_mark.line + 1
                stack += [key, value]
        elif isinstance(current, yaml.SequenceNode):
            stack += current.value
