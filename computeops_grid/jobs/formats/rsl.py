"""ARC's RSL syntax (the language of xRSL), parsed as ARC's own ``RSLParser.cpp`` does.

No library reads xRSL outside ARC's C++ client, so this is a port of its grammar:

* a request is ``&(...)(...)`` (``|`` alternatives, ``+`` several requests at the top); a file
  without the leading ``&`` is read as one;
* a relation is ``(attribute op values)`` with ``op`` one of ``= != < > <= >=``; attribute
  names are compared without case and without ``_`` (``rsl_substitution`` is
  ``rslsubstitution``);
* values are literals (bare words, ``"..."`` and ``'...'`` with the quote doubled inside,
  ``^Xtext X`` with a delimiter of one's choice), sequences ``( ... )``, variables ``$(NAME)``
  and concatenation (``#``, or writing two values without a space between them);
* comments are ``(* ... *)``;
* variables come from ``(rsl_substitution=("NAME" "value"))`` earlier in the same request; an
  unknown one is empty, as in ARC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

Value = Union[str, list["Value"]]
_SPECIAL = set("+&|()=<>!\"'^#$ \t\n\v\f\r")
_OPS = ("!=", "<=", ">=", "=", "<", ">")


class RslError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class _Node:
    kind: str  # lit, var, cat, seq
    text: str = ""
    parts: list[_Node] = field(default_factory=list)


@dataclass
class Relation:
    attribute: str  # normalized: lower case, no underscores
    written: str  # as written
    op: str
    nodes: list[_Node]
    line: int
    values: list[Value] = field(default_factory=list)  # evaluated


@dataclass
class Request:
    relations: list[Relation] = field(default_factory=list)
    alternatives: int = 0  # `|` branches dropped (the first one is kept)
    alternatives_line: int | None = None


Tree = Union[Relation, tuple[str, list["Tree"]]]


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = 0
        self.comments: dict[int, int] = {}
        pos = 0
        while (pos := text.find("(*", pos)) != -1:
            end = text.find("*)", pos + 2)
            if end == -1:
                raise RslError("end of comment `*)` not found", self.line(pos))
            self.comments[pos] = end + 2
            pos = end + 2

    def line(self, pos: int | None = None) -> int:
        return self.s.count("\n", 0, self.n if pos is None else pos) + 1

    def char(self) -> str:
        return self.s[self.n] if self.n < len(self.s) else ""

    def skip(self) -> bool:
        start = self.n
        while True:
            while self.char() and self.char() in " \t\n\v\f\r":
                self.n += 1
            if self.n in self.comments:
                self.n = self.comments[self.n]
                continue
            return self.n != start

    def expect(self, char: str) -> None:
        if self.char() != char:
            found = repr(self.char()) if self.char() else "the end"
            raise RslError(f"{char!r} expected, found {found}", self.line())
        self.n += 1

    def quoted(self, delim: str) -> str:
        text = ""
        while True:
            end = self.s.find(delim, self.n + 1)
            if end == -1:
                raise RslError(f"end of string quoted with {delim} not found", self.line())
            text += self.s[self.n + 1 : end]
            self.n = end + 1
            if self.char() != delim:
                return text
            text += delim

    def string(self) -> str | None:
        """A literal, or None where there is none."""
        char = self.char()
        if char in ("'", '"'):
            return self.quoted(char)
        if char == "^":
            self.n += 1
            return self.quoted(self.char())
        start = self.n
        while self.char() and self.char() not in _SPECIAL:
            self.n += 1
        return self.s[start : self.n] if self.n > start else None

    def value(self) -> _Node | None:
        char = self.char()
        if char == "(":
            self.n += 1
            seq = _Node("seq", parts=self.values())
            self.skip()
            self.expect(")")
            return seq
        if char == "$":
            self.n += 1
            self.skip()
            self.expect("(")
            self.skip()
            name = self.string()
            if name is None:
                raise RslError("variable name expected after $(", self.line())
            self.skip()
            self.expect(")")
            return _Node("var", name)
        text = self.string()
        return None if text is None else _Node("lit", text)

    def values(self) -> list[_Node]:
        found: list[_Node] = []
        glued = False  # the previous value ends right here: a value now is concatenated
        while True:
            if self.skip():
                glued = False
            explicit = self.char() == "#"
            if explicit:
                self.n += 1
                self.skip()
            node = self.value()
            if node is None:
                if explicit:
                    raise RslError("no right operand for the concatenation `#`", self.line())
                return found
            if (explicit or glued) and found:
                found[-1] = _Node("cat", parts=[found[-1], node])
            elif explicit:
                raise RslError("no left operand for the concatenation `#`", self.line())
            else:
                found.append(node)
            glued = node.kind != "seq"

    def group(self, op: str) -> Tree:
        children: list[Tree] = []
        while True:
            self.expect("(")
            children.append(self.rsl())
            self.skip()
            self.expect(")")
            self.skip()
            if self.char() != "(":
                return op, children

    def rsl(self) -> Tree:
        self.skip()
        op = self.char()
        if op in ("+", "&", "|"):
            self.n += 1
            self.skip()
            return self.group(op)
        line = self.line()
        attribute = self.string()
        if attribute is None:
            raise RslError("attribute name expected", line)
        self.skip()
        relop = next((o for o in _OPS if self.s.startswith(o, self.n)), None)
        if relop is None:
            raise RslError(f"relation operator expected after {attribute}", self.line())
        self.n += len(relop)
        nodes = self.values()
        return Relation(attribute.lower().replace("_", ""), attribute, relop, nodes, line)


def _evaluate(node: _Node, variables: dict[str, str]) -> Value:
    if node.kind == "lit":
        return node.text
    if node.kind == "var":
        return variables.get(node.text, "")
    if node.kind == "seq":
        return [_evaluate(p, variables) for p in node.parts]
    left, right = (_evaluate(p, variables) for p in node.parts)
    if not isinstance(left, str) or not isinstance(right, str):
        raise ValueError("concatenation of a sequence")
    return left + right


def _flatten(tree: Tree, request: Request, variables: dict[str, str]) -> None:
    if isinstance(tree, Relation):
        try:
            tree.values = [_evaluate(n, variables) for n in tree.nodes]
        except ValueError as exc:
            raise RslError(f"{tree.written}: {exc}", tree.line) from None
        if tree.attribute == "rslsubstitution":
            for pair in tree.values:
                if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(v, str) for v in pair):
                    raise RslError('rsl_substitution takes ("NAME" "value") pairs', tree.line)
                variables[str(pair[0])] = str(pair[1])
        request.relations.append(tree)
        return
    op, children = tree
    if op == "+":
        raise RslError("'+' (several requests) is allowed only at the top", 1)
    if op == "|":
        request.alternatives += len(children) - 1
        dropped = [c for c in children[1:] if isinstance(c, Relation)]
        request.alternatives_line = request.alternatives_line or (dropped[0].line if dropped else None)
        children = children[:1]
    scope = dict(variables)
    for child in children:
        _flatten(child, request, scope)


def parse(text: str) -> list[Request]:
    """The requests of an xRSL text (several with ``+``), relations evaluated in order."""
    parser = _Parser(text)
    parser.skip()
    tree = parser.group("&") if parser.char() == "(" else parser.rsl()  # `(a=1)(b=2)`: an implicit `&`
    parser.skip()
    if parser.n < len(parser.s):
        raise RslError("unexpected text after the request", parser.line())
    trees = tree[1] if isinstance(tree, tuple) and tree[0] == "+" else [tree]
    requests = []
    for item in trees:
        request = Request()
        _flatten(item, request, {})
        requests.append(request)
    return requests
