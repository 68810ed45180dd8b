"""The system's small, safe expression language for branching logic and calculated fields.

Expressions are parsed by a hand-written recursive-descent parser into a tiny tree and evaluated
by walking that tree; nothing is ever passed to ``eval``/``exec``, and only the operators and
functions listed here exist. Two dialects are read:

- ``"edc"`` — the system's own form, which is what is stored: fields are bare names,
  checkbox options ``checked(name, "code")``, e.g. ``age >= 18 and checked(symptoms, "2")``;
- ``"redcap"`` — REDCap's branching-logic/calculation syntax: ``[age] >= 18 and
  [symptoms(2)] = '1'``, ``<>`` for "not equal". It is translated into the own form.

Grammar (lowest precedence first)::

    expr   := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | cmp
    cmp    := sum (("=" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum    := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | power
    power  := atom ("^" unary)?
    atom   := NUMBER | STRING | field | NAME "(" args ")" | "(" expr ")"

Evaluation follows REDCap's habits: a blank value (``None`` or ``""``) makes arithmetic blank;
``x = ""`` tests for blank; numbers given as text compare as numbers.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from studies.forms.errors import ExpressionError

MAX_LENGTH = 4000
MAX_DEPTH = 60

# name -> (min args, max args); None = unbounded
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "if": (3, 3), "datediff": (3, 4), "round": (1, 2), "roundup": (1, 2), "rounddown": (1, 2),
    "abs": (1, 1), "sqrt": (1, 1), "min": (1, None), "max": (1, None), "sum": (1, None),
    "mean": (1, None), "isblank": (1, 1), "checked": (2, 2),
}
DATEDIFF_UNITS = {"y": 365.2425, "M": 30.436875, "d": 1.0, "h": 1 / 24, "m": 1 / 1440,
                  "s": 1 / 86400}
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


# ---- the tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Num:
    value: Decimal


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Checked:
    name: str
    code: str


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Node, ...]


Node = Num | Str | Field | Checked | Unary | Binary | Call

# ---- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?|\.\d+)
  | (?P<str>"[^"]*"|'[^']*')
  | (?P<ref>\[[^\[\]]*\])
  | (?P<op><=|>=|<>|!=|==|[=<>+\-*/^(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_REF = re.compile(r"^\[([a-z][a-z0-9_]*)(?:\(([A-Za-z0-9_.-]+)\))?\]$")


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int


def _tokens(src: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise ExpressionError(f"unexpected character {src[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(Tok("end", "", len(src)))
    return out


class _Parser:
    def __init__(self, src: str, dialect: str) -> None:
        if len(src) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        self.toks = _tokens(src)
        self.i = 0
        self.dialect = dialect
        self.depth = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.text.lower() == word

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def expect(self, op: str) -> None:
        if not self.is_op(op):
            raise ExpressionError(f"expected {op!r}, found {self.tok.text or 'the end'!r}",
                                  self.tok.pos)
        self.take()

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {self.tok.text!r}", self.tok.pos)
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expression nested too deeply", self.tok.pos)
        node = self.and_()
        while self.is_kw("or"):
            self.take()
            node = Binary("or", node, self.and_())
        self.depth -= 1
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.is_kw("and"):
            self.take()
            node = Binary("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.is_kw("not"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("expression nested too deeply", self.tok.pos)
            node = Unary("not", self.not_())
            self.depth -= 1
            return node
        return self.cmp()

    def cmp(self) -> Node:
        left = self.sum()
        if self.is_op("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            t = self.take()
            if t.text == "==" and self.dialect == "redcap":
                raise ExpressionError("use '=' for equality", t.pos)
            op = {"==": "=", "<>": "!="}.get(t.text, t.text)
            right = self.sum()
            if self.is_op(*COMPARISONS, "<>", "=="):
                raise ExpressionError("comparisons cannot be chained; use 'and'", self.tok.pos)
            return Binary(op, left, right)
        return left

    def sum(self) -> Node:
        node = self.term()
        while self.is_op("+", "-"):
            op = self.take().text
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.is_op("*", "/"):
            op = self.take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_op("-"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("expression nested too deeply", self.tok.pos)
            node = Unary("-", self.unary())
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.is_op("^"):
            self.take()
            return Binary("^", base, self.unary())
        return base

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            return Num(Decimal(t.text))
        if t.kind == "str":
            self.take()
            return Str(t.text[1:-1])
        if t.kind == "ref":
            if self.dialect != "redcap":
                raise ExpressionError("square brackets are REDCap syntax; write the bare name",
                                      t.pos)
            self.take()
            if self.tok.kind == "ref":
                raise ExpressionError(
                    f"event-prefixed reference {t.text}{self.tok.text} is not supported "
                    "(longitudinal logic must be set per event)", t.pos)
            m = _REF.match(t.text)
            if m is None:
                raise ExpressionError(f"{t.text} is not a field reference this system can "
                                      "translate (smart variables and instances are not "
                                      "supported)", t.pos)
            if m.group(2) is not None:
                return Checked(m.group(1), m.group(2))
            return Field(m.group(1))
        if t.kind == "name":
            self.take()
            if self.is_op("("):
                return self.call(t)
            if self.dialect == "redcap":
                raise ExpressionError(f"unknown word {t.text!r} (fields are written [name])",
                                      t.pos)
            if t.text.lower() in ("and", "or", "not"):
                raise ExpressionError(f"unexpected {t.text!r}", t.pos)
            return Field(t.text)
        if self.is_op("("):
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        raise ExpressionError(f"unexpected {t.text or 'end of expression'!r}", t.pos)

    def call(self, name: Tok) -> Node:
        fn = name.text.lower()
        if fn not in FUNCTIONS or (fn == "checked" and self.dialect == "redcap"):
            raise ExpressionError(f"unknown function {name.text!r}", name.pos)
        self.expect("(")
        args: list[Node] = []
        if not self.is_op(")"):
            args.append(self.expr())
            while self.is_op(","):
                self.take()
                args.append(self.expr())
        self.expect(")")
        lo, hi = FUNCTIONS[fn]
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise ExpressionError(f"{fn}() takes {lo}" + ("" if hi == lo else
                                  f" to {hi}" if hi else " or more") + " arguments", name.pos)
        if fn == "checked":
            if not isinstance(args[0], Field) or not isinstance(args[1], Str | Num):
                raise ExpressionError('checked() takes a field name and a code: '
                                      'checked(name, "code")', name.pos)
            code = args[1].value if isinstance(args[1], Str) else str(args[1].value)
            return Checked(args[0].name, code)
        if fn == "datediff":
            unit = args[2]
            if not isinstance(unit, Str) or unit.value not in DATEDIFF_UNITS:
                raise ExpressionError("datediff() unit must be one of 'y', 'M', 'd', 'h', 'm', "
                                      "'s'", name.pos)
            for a in args[:2]:
                if isinstance(a, Str) and a.value.lower() in ("today", "now"):
                    raise ExpressionError(
                        "datediff() with 'today'/'now' changes by itself every day and cannot "
                        "be stored as a computed value; compare with a date field instead",
                        name.pos)
            args = args[:3]  # a REDCap date-format argument is implied by ISO storage
        return Call(fn, tuple(args))


def parse(src: str, dialect: str = "edc") -> Node:
    """Parse an expression; raises :class:`ExpressionError` with the position at fault."""
    if dialect not in ("edc", "redcap"):
        raise ValueError(dialect)
    if not src or not src.strip():
        raise ExpressionError("empty expression")
    return _parse_cached(src, dialect)


@functools.lru_cache(maxsize=4096)
def _parse_cached(src: str, dialect: str) -> Node:
    """Trees are frozen dataclasses, so a parsed expression can be shared (data entry checks
    the same form's logic on every save and every imported row)."""
    return _Parser(src, dialect).parse()


def fields_of(node: Node) -> set[str]:
    if isinstance(node, Field | Checked):
        return {node.name}
    if isinstance(node, Unary):
        return fields_of(node.operand)
    if isinstance(node, Binary):
        return fields_of(node.left) | fields_of(node.right)
    if isinstance(node, Call):
        out: set[str] = set()
        for a in node.args:
            out |= fields_of(a)
        return out
    return set()


def check_fields(node: Node, known: Mapping[str, bool]) -> None:
    """Every referenced field exists; ``checked()`` only on multiple-choice fields.
    ``known`` maps a field name to whether it is a multiple-choice (checkbox) field."""
    def walk(n: Node) -> None:
        if isinstance(n, Field):
            if n.name not in known:
                raise ExpressionError(f"unknown field {n.name!r}")
            if known[n.name]:
                raise ExpressionError(f"{n.name!r} is a checkbox field; test one option with "
                                      f"checked({n.name}, \"code\")")
        elif isinstance(n, Checked):
            if n.name not in known:
                raise ExpressionError(f"unknown field {n.name!r}")
            if not known[n.name]:
                raise ExpressionError(f"{n.name!r} is not a checkbox field")
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)
    walk(node)


# ---- printing (the stored form) ---------------------------------------------------------------

_PREC = {"or": 1, "and": 2, "not": 3, "=": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "^": 8}


def _quote(s: str) -> str:
    return f"'{s}'" if '"' in s else f'"{s}"'


def to_text(node: Node) -> str:
    """The canonical own-dialect text of a tree; ``parse(to_text(t)) == t``."""
    return _print(node, 0, redcap=False)


def to_redcap(node: Node) -> str:
    """REDCap's text of a tree (``[name]``, ``[name(code)]``, ``<>``):
    ``translate_redcap(to_redcap(t)) == to_text(t)``, so a data dictionary written from the
    stored form reads back the same."""
    return _print(node, 0, redcap=True)


def _print(node: Node, outer: int, *, redcap: bool) -> str:
    def sub(n: Node, prec: int) -> str:
        return _print(n, prec, redcap=redcap)

    if isinstance(node, Num):
        return format(node.value, "f")
    if isinstance(node, Str):
        return (f"'{node.value}'" if "'" not in node.value else f'"{node.value}"') if redcap \
            else _quote(node.value)
    if isinstance(node, Field):
        return f"[{node.name}]" if redcap else node.name
    if isinstance(node, Checked):
        return (f"[{node.name}({node.code})]" if redcap
                else f"checked({node.name}, {_quote(node.code)})")
    if isinstance(node, Call):
        return f"{node.fn}(" + ", ".join(sub(a, 0) for a in node.args) + ")"
    if isinstance(node, Unary):
        p = _PREC["not" if node.op == "not" else "neg"]
        inner = sub(node.operand, p)
        text = f"not {inner}" if node.op == "not" else f"-{inner}"
    else:
        p = _PREC[node.op]
        op = "<>" if redcap and node.op == "!=" else node.op
        if node.op == "^":  # right-associative
            text = f"{sub(node.left, p + 1)} ^ {sub(node.right, p)}"
        elif p == 4:  # comparisons do not chain
            text = f"{sub(node.left, p + 1)} {op} {sub(node.right, p + 1)}"
        else:
            text = f"{sub(node.left, p)} {op} {sub(node.right, p + 1)}"
    return f"({text})" if p < outer else text


def translate_redcap(src: str, known: Mapping[str, bool] | None = None) -> str:
    """REDCap logic → the stored own form. Raises :class:`ExpressionError` if it cannot."""
    tree = parse(src, "redcap")
    if known is not None:
        check_fields(tree, known)
    return to_text(tree)


# ---- evaluation -------------------------------------------------------------------------------

Value = Decimal | str | bool | dt.date | dt.datetime | list[str] | None


def _blank(v: Any) -> bool:
    return v is None or v == "" or v == []


def _num(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return Decimal(int(v))
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int | float):
        return Decimal(str(v))
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def _when(v: Any) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    if isinstance(v, str):
        try:
            if len(v) == 10:
                d = dt.date.fromisoformat(v)
                return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
            w = dt.datetime.fromisoformat(v)
            return w if w.tzinfo else w.replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    return None


def _truthy(v: Any) -> bool:
    if _blank(v):
        return False
    if isinstance(v, bool):
        return v
    n = _num(v)
    if n is not None:
        return n != 0
    return True


def _compare(op: str, a: Any, b: Any) -> bool:
    if _blank(a) or _blank(b):
        if op == "=":
            return _blank(a) and _blank(b)
        if op == "!=":
            return not (_blank(a) and _blank(b))
        return False
    na, nb = _num(a), _num(b)
    x: Any
    y: Any
    if na is not None and nb is not None:
        x, y = na, nb
    else:
        wa, wb = _when(a), _when(b)
        if wa is not None and wb is not None:
            x, y = wa, wb
        else:
            x, y = str(a), str(b)
    return {"=": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y,
            ">=": x >= y}[op]


def _round(v: Decimal, places: Any, mode: str) -> Decimal:
    n = max(-20, min(20, int(_num(places) or 0)))
    q = Decimal(1).scaleb(-n)
    return v.quantize(q, rounding=mode)


def evaluate(node: Node, values: Mapping[str, Any]) -> Value:
    """Evaluate a tree against field values (checkbox values are lists of codes)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Field):
        v = values.get(node.name)
        if isinstance(v, bool):
            return Decimal(int(v))
        if isinstance(v, int | float):
            return Decimal(str(v))
        return v  # type: ignore[no-any-return]
    if isinstance(node, Checked):
        v = values.get(node.name)
        return Decimal(1) if isinstance(v, list | tuple) and node.code in v else Decimal(0)
    if isinstance(node, Unary):
        if node.op == "not":
            return not _truthy(evaluate(node.operand, values))
        n = _num(evaluate(node.operand, values))
        return None if n is None else -n
    if isinstance(node, Binary):
        if node.op == "and":
            return _truthy(evaluate(node.left, values)) and _truthy(evaluate(node.right, values))
        if node.op == "or":
            return _truthy(evaluate(node.left, values)) or _truthy(evaluate(node.right, values))
        a, b = evaluate(node.left, values), evaluate(node.right, values)
        if node.op in COMPARISONS:
            return _compare(node.op, a, b)
        x, y = _num(a), _num(b)
        if x is None or y is None:
            return None
        try:
            if node.op == "+":
                return x + y
            if node.op == "-":
                return x - y
            if node.op == "*":
                return x * y
            if node.op == "/":
                return None if y == 0 else x / y
            if node.op == "^":
                if abs(y) > 100:
                    return None
                return Decimal(str(math.pow(float(x), float(y))))
        except (InvalidOperation, OverflowError, ValueError, ArithmeticError):
            return None
        raise ExpressionError(f"unknown operator {node.op!r}")
    return _call(node, values)


def _call(node: Call, values: Mapping[str, Any]) -> Value:
    try:
        return _call_unguarded(node, values)
    except (InvalidOperation, OverflowError, ValueError, ArithmeticError):
        return None  # a value that cannot be computed is blank, never an error at entry


def _call_unguarded(node: Call, values: Mapping[str, Any]) -> Value:
    fn = node.fn
    if fn == "if":
        cond = evaluate(node.args[0], values)
        return evaluate(node.args[1] if _truthy(cond) else node.args[2], values)
    args = [evaluate(a, values) for a in node.args]
    if fn == "isblank":
        return _blank(args[0])
    if fn == "datediff":
        a, b = _when(args[0]), _when(args[1])
        if a is None or b is None:
            return None
        days = (b - a).total_seconds() / 86400
        unit = str(args[2])
        return Decimal(str(abs(days) / DATEDIFF_UNITS[unit]))
    nums = [_num(v) for v in args]
    if fn in ("min", "max", "sum", "mean"):
        present = [n for n in nums if n is not None]
        if not present:
            return None
        if fn == "min":
            return min(present)
        if fn == "max":
            return max(present)
        if fn == "sum":
            return sum(present, Decimal(0))
        return sum(present, Decimal(0)) / len(present)
    x = nums[0]
    if x is None:
        return None
    if fn == "abs":
        return abs(x)
    if fn == "sqrt":
        return None if x < 0 else x.sqrt()
    places = args[1] if len(args) > 1 else 0
    mode = {"round": ROUND_HALF_UP, "roundup": ROUND_CEILING, "rounddown": ROUND_FLOOR}[fn]
    return _round(x, places, mode)
