"""Swarm's payload templates (`--template-driver golang`): a config or secret whose text holds actions
such as `{{.Service.Name}}`, `{{env "HOME"}}` or `{{secret "db_pass"}}` is rendered at the agent, per
task, as swarmkit's template package does with Go's text/template.

Only what Swarm's template context offers is understood: field paths (.Service.ID/.Name/.Labels,
.Node.ID/.Hostname/.Platform.OS/.Platform.Architecture, .Task.ID/.Name/.Slot), `index` into the
labels, the functions env, secret, config and join with string literals, and `{{-`/`-}}` trimming.
Anything else (control structures, pipelines, other functions) is refused with a parse error rather
than guessed at, so a template never runs code and never half-renders."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\.[A-Za-z0-9_.]*)|([A-Za-z_][A-Za-z0-9_]*))')
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}


class TemplateError(ValueError):
    """The template does not parse or names something the context lacks (the task is rejected)."""


@dataclass(frozen=True)
class TemplateContext:
    """What a template can see: the context as nested string-keyed maps, and the lookups behind
    env/secret/config (each returns the text or raises TemplateError)."""

    fields: Mapping[str, Any]
    env: Callable[[str], str]
    secret: Callable[[str], str]
    config: Callable[[str], str]


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _tokens(action: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: "str" literals, "field" paths, "name" identifiers."""
    tokens, position = [], 0
    action = action.strip()
    while position < len(action):
        found = _TOKEN.match(action, position)
        if found is None or found.end() == position:
            raise TemplateError(f"template: unexpected {action[position:]!r} in command")
        quoted, raw, path, name = found.groups()
        if quoted is not None:
            tokens.append(("str", _unquote(quoted)))
        elif raw is not None:
            tokens.append(("str", raw))
        elif path is not None:
            tokens.append(("field", path))
        else:
            tokens.append(("name", name))
        position = found.end()
    return tokens


def _field(fields: Mapping[str, Any], path: str) -> Any:
    value: Any = fields
    if path == ".":
        return value
    for part in path.strip(".").split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise TemplateError(f"template: can't evaluate field {part}")
        value = value[part]
    return value


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        # Go prints a map as map[k:v ...] with its keys sorted
        return "map[" + " ".join(f"{k}:{value[k]}" for k in sorted(value)) + "]"
    return str(value)


def _evaluate(action: str, context: TemplateContext) -> str:
    tokens = _tokens(action)
    if not tokens:
        raise TemplateError("template: missing value for command")
    kind, head = tokens[0]
    args = tokens[1:]
    if kind == "field":
        if args:
            raise TemplateError(f"template: {head} is not a function")
        return _text(_field(context.fields, head))
    if kind == "str":
        if args:
            raise TemplateError("template: can't give argument to non-function")
        return head
    values = [_field(context.fields, text) if k == "field" else text for k, text in args]
    if any(k == "name" for k, _ in args):
        raise TemplateError("template: only string and field arguments are supported")
    functions: dict[str, Callable[..., str]] = {
        "env": context.env,
        "secret": context.secret,
        "config": context.config,
        "join": lambda sep, *items: str(sep).join(map(str, items)),
        "index": _index,
    }
    function = functions.get(head)
    if function is None:
        raise TemplateError(f'template: function "{head}" not defined')
    arity = {"env": 1, "secret": 1, "config": 1, "index": 2}.get(head)
    if arity is not None and len(values) != arity:
        raise TemplateError(f"template: wrong number of args for {head}: want {arity} got {len(values)}")
    if head == "join" and not values:
        raise TemplateError("template: wrong number of args for join: want at least 1 got 0")
    return _text(function(*values))


def _index(container: Any, key: Any) -> str:
    if not isinstance(container, Mapping):
        raise TemplateError("template: can't index item of this type")
    if key not in container:
        raise TemplateError(f"template: map has no entry for key {key!r}")
    return str(container[key])


def render(text: str, context: TemplateContext) -> str:
    out: list[str] = []
    position = 0
    for found in _ACTION.finditer(text):
        literal = text[position:found.start()]
        if found.group(1):
            literal = literal.rstrip()
        out.append(literal)
        out.append(_evaluate(found.group(2), context))
        position = found.end()
        if found.group(3):
            rest = text[position:]
            position += len(rest) - len(rest.lstrip())
    tail = text[position:]
    if "{{" in tail:
        raise TemplateError("template: unclosed action")
    out.append(tail)
    return "".join(out)
