"""The template check Swarm makes at service create and update: the container's hostname (and, as
swarmkit does in the same pass, each env value and each mount's source and target) is expanded once
against a stand-in task, and a template that does not parse or names a field the context lacks is
refused with Go's text/template error, e.g.

    expanding hostname failed: template: expansion:1: function "foo" not defined

What is checked is what Go would stop at and what a user plausibly types: the lexer's and parser's
errors (unclosed actions, unknown functions, undefined variables, unbalanced {{if}}/{{end}}), and field
chains evaluated against swarmkit's template context (Service.ID/Name/Labels, Node.ID/Hostname/
Platform.OS/Architecture, Task.ID/Name/Slot). Anything past that (a pipeline whose functions would fail
at run time, an action inside a branch Go might not take) is accepted rather than guessed at: this is
swarmkit's own "best effort" validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal.api import errors

TEMPLATE_NAME = "expansion"  # swarmkit names every template it expands so
# text/template's builtins plus swarmkit's `join`
_FUNCTIONS = frozenset({
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println",
    "urlquery", "eq", "ge", "gt", "le", "lt", "ne", "join",
})
_KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
                       "template", "with"})
_OPENERS = frozenset({"if", "range", "with", "block", "define"})


# ------------------------------------------------------------------ swarmkit's Context, as Go types

@dataclass(frozen=True)
class _Struct:
    go_name: str
    fields: Mapping[str, _Struct | str]


_STRING = "string"
_LABELS = "map[string]string"  # nil in the stand-in task: every key is missing
_PLATFORM = _Struct("template.Platform", {"Architecture": _STRING, "OS": _STRING})
_CONTEXT = _Struct("*template.Context", {
    "Service": _Struct("struct { ID string; Name string; Labels map[string]string }",
                       {"ID": _STRING, "Name": _STRING, "Labels": _LABELS}),
    "Node": _Struct("struct { ID string; Hostname string; Platform template.Platform }",
                    {"ID": _STRING, "Hostname": _STRING, "Platform": _PLATFORM}),
    "Task": _Struct("struct { ID string; Name string; Slot string }",
                    {"ID": _STRING, "Name": _STRING, "Slot": _STRING}),
})


class TemplateRefused(Exception):
    """Go's error text for a template swarmkit would not expand."""


# ------------------------------------------------------------------------------------------ lexer

@dataclass(frozen=True)
class _Token:
    kind: str   # left, right, space, field, variable, ident, string, raw, number, char, bool, pipe,
    #             lparen, rparen, declare, assign, punct, dot, eof
    text: str
    pos: int    # byte offset in the template, as Go's Pos
    line: int


_SPACE = " \t\r\n"
_NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?i?)")


def _is_space(char: str) -> bool:
    return char != "" and char in _SPACE


def _unicode_name(char: str) -> str:
    """Go's %#U: U+007D '}'."""
    return f"U+{ord(char):04X} '{char}'" if char.isprintable() else f"U+{ord(char):04X}"


def go_quote(text: str) -> str:
    """Go's %q (strconv.Quote) for the texts swarmkit quotes in its messages."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append({"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
                        "\v": r"\v"}[char])
        elif not char.isprintable():
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[_Token] = []
        self.i = 0

    def byte_pos(self, index: int) -> int:
        return len(self.text[:index].encode())

    def line_at(self, index: int) -> int:
        return 1 + self.text.count("\n", 0, index)

    def fail(self, message: str, index: int | None = None) -> TemplateRefused:
        return TemplateRefused(f"template: {TEMPLATE_NAME}:{self.line_at(self.i if index is None else index)}: "
                               f"{message}")

    def emit(self, kind: str, start: int) -> None:
        self.tokens.append(_Token(kind, self.text[start:self.i], self.byte_pos(start), self.line_at(start)))

    def run(self) -> list[_Token]:
        text = self.text
        while True:
            opening = text.find("{{", self.i)
            if opening < 0:
                self.i = len(text)
                self.emit("eof", len(text))
                return self.tokens
            self.i = opening + 2
            # "{{- " trims the text before; a comment may follow the marker
            marker = 2 if text[self.i:self.i + 1] == "-" and _is_space(text[self.i + 1:self.i + 2]) else 0
            if text.startswith("/*", self.i + marker):
                self.i += marker
                self._comment()
                continue
            self.emit("left", opening)
            self.i += marker
            self._inside_action()

    def _comment(self) -> None:
        end = self.text.find("*/", self.i + 2)
        if end < 0:
            raise self.fail("unclosed comment")
        self.i = end + 2
        width = self._at_right()
        if not width:
            raise self.fail("comment ends before closing delimiter")
        self.i += width

    def _at_right(self) -> int:
        """Length of the right delimiter (with its trim marker) at the cursor, or 0."""
        text = self.text
        if text.startswith("}}", self.i):
            return 2
        if _is_space(text[self.i:self.i + 1]) and text.startswith("-}}", self.i + 1):
            return 4
        return 0

    def _at_terminator(self) -> bool:
        char = self.text[self.i:self.i + 1]
        return char == "" or _is_space(char) or char in ".,|:()" or self.text.startswith("}}", self.i)

    def _inside_action(self) -> None:
        text, depth = self.text, 0
        while True:
            width = self._at_right()
            if width:
                if depth:
                    raise self.fail("unclosed left paren")
                start = self.i
                self.i += width
                self.emit("right", start)
                return
            if self.i >= len(text):
                raise self.fail("unclosed action")
            start, char = self.i, text[self.i]
            self.i += 1
            if _is_space(char):
                while _is_space(text[self.i:self.i + 1]) and not self._at_right():
                    self.i += 1
                self.emit("space", start)
            elif char == "=":
                self.emit("assign", start)
            elif char == ":":
                if text[self.i:self.i + 1] != "=":
                    raise self.fail("expected :=")
                self.i += 1
                self.emit("declare", start)
            elif char == "|":
                self.emit("pipe", start)
            elif char in "\"'`":
                self._quoted(start, char)
            elif char == "$":
                self._field_or_variable(start, "variable")
            elif char == "." and not text[self.i:self.i + 1].isdigit():
                self._field_or_variable(start, "field")
            elif char in "+-." or char.isdigit():
                self.i = start
                self._number()
            elif char.isalnum() or char == "_":
                self._identifier(start)
            elif char == "(":
                depth += 1
                self.emit("lparen", start)
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise self.fail(f"unexpected right paren {_unicode_name(char)}")
                self.emit("rparen", start)
            elif char.isascii() and char.isprintable():
                self.emit("punct", start)
            else:
                raise self.fail(f"unrecognized character in action: {_unicode_name(char)}")

    def _quoted(self, start: int, quote: str) -> None:
        text = self.text
        while True:
            if self.i >= len(text) or (quote != "`" and text[self.i] == "\n"):
                raise self.fail({"`": "unterminated raw quoted string", '"': "unterminated quoted string"}
                                .get(quote, "unterminated character constant"))
            char = text[self.i]
            self.i += 1
            if char == "\\" and quote != "`":
                self.i += 1
            elif char == quote:
                break
        self.emit({"`": "raw", '"': "string"}.get(quote, "char"), start)

    def _field_or_variable(self, start: int, kind: str) -> None:
        if self._at_terminator():
            self.emit("variable" if kind == "variable" else "dot", start)
            return
        self._skip_word()
        if not self._at_terminator():
            raise self.fail(f"bad character {_unicode_name(self.text[self.i])}")
        self.emit(kind, start)

    def _skip_word(self) -> None:
        """Past letters, digits and underscores (Go's isAlphaNumeric)."""
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] == "_"):
            self.i += 1

    def _identifier(self, start: int) -> None:
        self._skip_word()
        if not self._at_terminator():
            raise self.fail(f"bad character {_unicode_name(self.text[self.i])}")
        word = self.text[start:self.i]
        self.emit("bool" if word in ("true", "false") else "ident", start)

    def _number(self) -> None:
        start = self.i
        found = _NUMBER.match(self.text, self.i)
        self.i = found.end() if found else self.i + 1
        if found is None or (self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] == "_")):
            while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] in "_.+-"):
                self.i += 1
            raise self.fail(f"bad number syntax: {go_quote(self.text[start:self.i])}")
        self.emit("number", start)


# ------------------------------------------------------------------------------------------ parser

@dataclass
class _FieldChain:
    """A field or variable chain a command evaluates (.Task.Slot, $.Node.ID), with Go's node position."""

    names: tuple[str, ...]
    pos: int
    display: str


@dataclass
class _Parsed:
    checks: list[_FieldChain] = field(default_factory=list)  # evaluated unconditionally, in order


def _describe(token: _Token) -> str:
    """How Go's parser names a token in "unexpected X in Y"."""
    if token.kind == "eof":
        return "EOF"
    if token.kind == "ident" and token.text in _KEYWORDS:
        return f"<{token.text}>"
    if len(token.text) > 10:
        return go_quote(token.text[:10]) + "..."
    return go_quote(token.text)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.k = 0
        self.open: list[str] = []          # control structures not yet ended
        self.scopes: list[set[str]] = [{"$"}]
        self.parsed = _Parsed()

    def fail(self, message: str, token: _Token | None = None) -> TemplateRefused:
        line = (token or self.tokens[max(self.k - 1, 0)]).line
        return TemplateRefused(f"template: {TEMPLATE_NAME}:{line}: {message}")

    def peek(self) -> _Token:
        return self.tokens[self.k]

    def next(self) -> _Token:
        token = self.tokens[self.k]
        self.k += 1
        return token

    def next_non_space(self) -> _Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def run(self) -> _Parsed:
        while (token := self.next()).kind != "eof":
            if token.kind == "left":
                self._action()
        if self.open:
            raise self.fail("unexpected EOF", token)
        return self.parsed

    def _action(self) -> None:
        token = self.next_non_space()
        word = token.text if token.kind == "ident" else ""
        if word == "end" or word == "else":
            if not self.open:
                raise self.fail(f"unexpected {{{{{word}}}}}", token)
            if word == "end":
                self.open.pop()
                self.scopes.pop()
                self._expect_right("end")
                return
            following = self.next_non_space()
            if following.kind == "ident" and following.text in ("if", "with"):
                self._pipeline(following.text, conditional=True)
            elif following.kind != "right":
                raise self.fail(f"unexpected {_describe(following)} in else", following)
            return
        if word in ("define", "block", "template"):
            self._skip_to_right()  # named templates: parsed by Go, nothing of swarmkit's context to check
            if word != "template":
                self.open.append(word)
                self.scopes.append(set())
            return
        if word in ("if", "with", "range"):
            conditional = bool(self.open)
            self.open.append(word)
            self.scopes.append(set())
            self._pipeline(word, conditional=conditional)
            return
        if word in ("break", "continue") and "range" in self.open:
            self._expect_right(word)
            return
        self.k -= 1
        self._pipeline("command", conditional=bool(self.open))

    def _skip_to_right(self) -> None:
        while (token := self.next()).kind != "right":
            if token.kind == "eof":
                raise self.fail("unexpected EOF", token)

    def _expect_right(self, context: str) -> None:
        token = self.next_non_space()
        if token.kind != "right":
            raise self.fail(f"unexpected {_describe(token)} in {context}", token)

    def _pipeline(self, context: str, conditional: bool, end: str = "right") -> None:
        self._declarations()
        stage = 0
        while True:
            token = self.next_non_space()
            if token.kind == end:
                if stage == 0:
                    raise self.fail(f"missing value for {context}", token)
                return
            if token.kind in _OPERAND_KINDS and not _is_keyword(token):
                self.k -= 1
                first = self._command(conditional)
                stage += 1
                if stage > 1 and first in _NOT_EXECUTABLE:
                    raise self.fail(f"non executable command in pipeline stage {stage}", token)
            else:
                raise self.fail(f"unexpected {_describe(token)} in {context}", token)

    def _declarations(self) -> None:
        start = self.k
        names: list[str] = []
        while True:
            token = self.next_non_space()
            if token.kind != "variable":
                break
            after = self.next_non_space()
            if after.kind in ("declare", "assign"):
                names.append(token.text)
                if after.kind == "declare":
                    self.scopes[-1].update(names)
                return
            if after.kind == "punct" and after.text == ",":
                names.append(token.text)
                continue
            break
        self.k = start

    def _command(self, conditional: bool) -> str:
        """One command of a pipeline; returns the kind of its first operand."""
        first = ""
        while True:
            while self.peek().kind == "space":
                self.next()
            kind = self._operand(conditional)
            if kind and not first:
                first = kind
                if kind == "ident" and self.tokens[self.k - 1].text in ("and", "or"):
                    conditional = True  # Go stops evaluating and/or's arguments at the first decisive one
            token = self.next()
            if token.kind == "space":
                continue
            if token.kind in ("right", "rparen"):
                self.k -= 1
            elif token.kind != "pipe":
                raise self.fail(f"unexpected {_describe(token)} in operand", token)
            break
        if not first:
            raise self.fail("empty command")
        return first

    def _operand(self, conditional: bool) -> str:
        """Parse one operand (a term and any field chain after it); "" when the next token is none."""
        token = self.peek()
        if token.kind not in _OPERAND_KINDS or _is_keyword(token):
            return ""
        self.next()
        if token.kind == "lparen":
            self._pipeline("parenthesized pipeline", conditional, end="rparen")
            while self.peek().kind == "field":
                self.next()
            return "lparen"
        chain = [token]
        while self.peek().kind == "field":
            chain.append(self.next())
        if token.kind == "ident" and token.text != "nil" and token.text not in _FUNCTIONS:
            raise self.fail(f"function {go_quote(token.text)} not defined", token)
        if token.kind == "variable" and not any(token.text in scope for scope in self.scopes):
            raise self.fail(f"undefined variable {go_quote(token.text)}", token)
        root_chain = token.kind == "field" or (token.kind == "variable" and token.text == "$" and len(chain) > 1)
        if root_chain and not conditional:
            names = tuple(t.text.lstrip(".") for t in chain if t.kind == "field")
            display = "".join(t.text for t in chain)
            position = chain[1].pos if len(chain) > 1 else token.pos
            self.parsed.checks.append(_FieldChain(names, position, display))
        return "nil" if token.text == "nil" and token.kind == "ident" else token.kind


_OPERAND_KINDS = frozenset({"bool", "char", "dot", "field", "ident", "number", "raw", "string", "variable",
                            "lparen"})
_NOT_EXECUTABLE = frozenset({"bool", "dot", "nil", "number", "char", "string", "raw"})


def _is_keyword(token: _Token) -> bool:
    return token.kind == "ident" and token.text in _KEYWORDS and token.text != "nil"


# --------------------------------------------------------------------------------------- evaluation

def _evaluate(text: str, chain: _FieldChain) -> None:
    kind: _Struct | str = _CONTEXT
    for name in chain.names:
        if isinstance(kind, _Struct):
            if name not in kind.fields:
                _exec_error(text, chain, f"can't evaluate field {name} in type {kind.go_name}")
            kind = kind.fields[name]
        elif kind == _LABELS:
            _exec_error(text, chain, f"map has no entry for key {go_quote(name)}")
        else:
            _exec_error(text, chain, f"can't evaluate field {name} in type {kind}")


def _exec_error(text: str, chain: _FieldChain, message: str) -> None:
    before = text.encode()[:chain.pos].decode(errors="replace")
    newline = before.rfind("\n")
    column = chain.pos if newline < 0 else chain.pos - len(before[:newline + 1].encode())
    context = chain.display if len(chain.display) <= 20 else chain.display[:20] + "..."
    raise TemplateRefused(f"template: {TEMPLATE_NAME}:{1 + before.count(chr(10))}:{column}: executing "
                          f"{go_quote(TEMPLATE_NAME)} at <{context}>: {message}")


def expand_check(text: str) -> None:
    """Raise TemplateRefused with Go's text when swarmkit could not expand `text`."""
    if "{{" not in text:
        return
    parsed = _Parser(_Lexer(text).run()).run()
    for chain in parsed.checks:
        _evaluate(text, chain)


# --------------------------------------------------------------------------------- the spec's check

def _check_env(values: Iterable[Any]) -> None:
    for value in values:
        _name, sep, rest = str(value).partition("=")
        if sep:
            try:
                expand_check(rest)
            except TemplateRefused as exc:
                raise errors.InvalidArgument(f"expanding env failed: expanding env {go_quote(str(value))}: {exc}",
                                             grpc=True) from None


def _check_mounts(mounts: Iterable[Any]) -> None:
    for mount in mounts:
        if not isinstance(mount, Mapping):
            continue
        for key, word in (("Source", "source"), ("Target", "target")):
            value = str(mount.get(key) or "")
            try:
                expand_check(value)
            except TemplateRefused as exc:
                raise errors.InvalidArgument(
                    f"expanding mounts failed: expanding mount {word} {go_quote(value)}: {exc}", grpc=True) from None


def check_container_templates(container: Mapping[str, Any]) -> None:
    """swarmkit's create/update check of the ContainerSpec's templates, in its order: env values,
    mount sources and targets, then the hostname. InvalidArgument (gRPC text) when one is refused."""
    _check_env(container.get("Env") or ())
    _check_mounts(container.get("Mounts") or ())
    try:
        expand_check(str(container.get("Hostname") or ""))
    except TemplateRefused as exc:
        raise errors.InvalidArgument(f"expanding hostname failed: {exc}", grpc=True) from None
