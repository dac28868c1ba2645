"""The RSL grammar (a port of ARC's RSLParser.cpp): quoting, sequences, variables, concatenation,
comments, several requests, alternatives, and errors with their lines."""

from __future__ import annotations

import pytest

from computeops_grid.jobs.formats.rsl import RslError, parse
from computeops_grid.jobs.formats.xrsl import period


def _values(text: str) -> dict[str, list[object]]:
    (request,) = parse(text)
    return {r.attribute: r.values for r in request.relations}


def test_quoting_forms() -> None:
    found = _values("""&(arguments="a b" 'c''d' "e""f" ^|g h| bare)""")
    assert found["arguments"] == ["a b", "c'd", 'e"f', "g h", "bare"]


def test_names_lose_case_and_underscores() -> None:
    assert list(_values('&(Job_Name="x")(RSL_substitution=("A" "1"))')) == ["jobname", "rslsubstitution"]


def test_sequences_and_variables_in_order() -> None:
    found = _values(
        '&(rsl_substitution=("D" "/data"))(inputfiles=("in" $(D)/in.dat)("x" ""))'
        '(jobname="run-"#$(D)#"-"#$(UNSET))'
    )
    assert found["inputfiles"] == [["in", "/data/in.dat"], ["x", ""]]
    assert found["jobname"] == ["run-/data-"]  # an unknown variable is empty, as in ARC


def test_a_variable_is_known_only_after_its_definition() -> None:
    found = _values('&(jobname=$(A))(rsl_substitution=("A" "late"))')
    assert found["jobname"] == [""]


def test_comments_and_implicit_and() -> None:
    text = '(* first *)(executable = /usr/bin/env)(* between *)(jobname = "test")'
    assert _values(text) == {"executable": ["/usr/bin/env"], "jobname": ["test"]}


def test_several_requests_and_alternatives() -> None:
    requests = parse('+(&(executable=a))(&(executable=b)(|(queue="q1")(queue="q2")))')
    assert [r.relations[0].values for r in requests] == [["a"], ["b"]]
    assert requests[1].alternatives == 1
    assert [r.attribute for r in requests[1].relations] == ["executable", "queue"]


def test_operators() -> None:
    (request,) = parse('&(runtimeenvironment>="APPS/X-1.0")(queue!="slow")')
    assert [(r.attribute, r.op) for r in request.relations] == [("runtimeenvironment", ">="), ("queue", "!=")]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('&(executable="a)', 1, "end of string"),
        ("&(executable=a\n", 2, "')' expected"),
        ("&\n(executable a)", 2, "relation operator expected"),
        ("(* never closed", 1, "end of comment"),
        ("&(a=1)\njunk", 2, "unexpected text"),
        ("&(a=1 # )", 1, "no right operand"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(RslError) as info:
        parse(text)
    assert info.value.line == line
    assert message in info.value.message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 1800),
        ("PT1H30M", 5400),
        ("P1DT2H", 93600),
        ("2 hours 30", 9000),
        ("1h 5m 10s", 3910),
        ("90s", 90),
    ],
)
def test_arc_periods(text: str, seconds: int) -> None:
    assert period(text) == seconds


def test_a_bad_period_is_none() -> None:
    assert period("soon") is None
    assert period("1:30") is None
