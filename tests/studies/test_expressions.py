"""The small, safe expression language: parsed by a real parser, never eval'd."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studies.forms import expressions as ex
from studies.forms.errors import ExpressionError


@pytest.mark.parametrize("redcap,own", [
    ("[age] >= 18 and [sex] = '1'", 'age >= 18 and sex = "1"'),
    ("[a] <> '' or [b] = 2", 'a != "" or b = 2'),
    ("[chk(3)] = '1'", 'checked(chk, "3") = "1"'),
    ("([a] + [b]) * 2", "(a + b) * 2"),
    ("if([x] > 1, 'hi', 'lo')", 'if(x > 1, "hi", "lo")'),
    ("not([a] = 1)", "not a = 1"),
])
def test_redcap_logic_translates_to_the_own_form(redcap: str, own: str) -> None:
    assert ex.translate_redcap(redcap) == own
    assert ex.parse(own) == ex.parse(redcap, "redcap")


@pytest.mark.parametrize("src,problem", [
    ("__import__('os').system('rm -rf /')", "unexpected character '.'"),
    ("__import__('os')", "unknown function"),
    ("os", "unknown word"),
    ("[a] = 1; [b]", "unexpected character"),
    ("[event_1_arm_1][age] > 1", "event-prefixed"),
    ("[age] > [user-name]", "not a field reference"),
    ("datediff([d], 'today', 'y')", "today"),
    ("eval('1')", "unknown function"),
    ("1 < 2 < 3", "cannot be chained"),
    ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
])
def test_anything_outside_the_language_is_refused(src: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem):
        ex.parse(src, "redcap")


def test_checkbox_fields_must_use_checked() -> None:
    with pytest.raises(ExpressionError, match="checkbox"):
        ex.translate_redcap("[chk] = '1'", {"chk": True})
    with pytest.raises(ExpressionError, match="unknown field 'zz'"):
        ex.translate_redcap("[zz] = '1'", {"chk": True})


def test_evaluation_follows_redcap_habits() -> None:
    values = {"a": "", "n": "5", "d1": "2020-01-01", "d2": "2021-01-01", "chk": ["2"]}
    assert ex.evaluate(ex.parse('a = ""'), values) is True
    assert ex.evaluate(ex.parse("n + a"), values) is None  # blank makes arithmetic blank
    assert ex.evaluate(ex.parse("n >= 5 and checked(chk, 2)"), values) is True
    assert ex.evaluate(ex.parse('round(datediff(d1, d2, "d"), 0)'), values) == Decimal(366)
    assert ex.evaluate(ex.parse("1 / 0"), values) is None
    assert ex.evaluate(ex.parse("d2 > d1"), values) is True


_names = st.sampled_from(["a", "b", "weight"])
_atoms = st.one_of(st.integers(0, 999).map(lambda n: ex.Num(Decimal(n))), _names.map(ex.Field),
                   st.text("xyz12", max_size=3).map(ex.Str))


def _extend(children: st.SearchStrategy[ex.Node]) -> st.SearchStrategy[ex.Node]:
    return st.one_of(
        st.builds(ex.Binary, st.sampled_from(["+", "-", "*", "/", "^"]), children, children),
        st.builds(ex.Binary, st.sampled_from(["and", "or"]), children, children),
        st.builds(ex.Binary, st.sampled_from(["=", "<", ">="]), children, children),
        st.builds(ex.Unary, st.sampled_from(["-", "not"]), children),
        st.builds(lambda a: ex.Call("abs", (a,)), children))


@given(st.recursive(_atoms, _extend, max_leaves=12))
def test_printing_then_parsing_gives_the_same_tree(tree: ex.Node) -> None:
    assert ex.parse(ex.to_text(tree)) == tree
