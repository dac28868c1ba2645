"""One meaning per exit code: the table in errors.py drives the errors and the --help epilog."""

from __future__ import annotations

import importlib
import pkgutil
import re

import computeops_grid
from computeops_grid.errors import EXIT_CODES, CopsError, ExitCode, exit_codes_epilog
from tests.conftest import Cli


def _all_error_classes() -> list[type[CopsError]]:
    for mod in pkgutil.walk_packages(computeops_grid.__path__, "computeops_grid."):
        if ".worker" in mod.name or mod.name.endswith(("cli.main", "__main__")):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError:  # an optional extra is not installed: its errors are not reachable
            continue
    found: list[type[CopsError]] = []
    todo: list[type[CopsError]] = [CopsError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_every_code_has_one_meaning_and_every_meaning_one_code() -> None:
    assert set(EXIT_CODES) == set(ExitCode)
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)


def test_every_error_class_exits_with_a_code_of_the_table() -> None:
    classes = _all_error_classes()
    assert len(classes) > 15  # the walk did import the packages
    stray = {cls.__qualname__: cls.exit_code for cls in classes if cls.exit_code not in EXIT_CODES}
    assert stray == {}
    used = {cls.exit_code for cls in classes}
    assert used >= {
        ExitCode.UNKNOWN_JOB,
        ExitCode.IMAGE_NOT_FOUND,
        ExitCode.NOT_SENT,
        ExitCode.MAY_HAVE_ARRIVED,
        ExitCode.REPOSITORY_BUSY,
        ExitCode.TOOL_MISSING,
        ExitCode.REJECTED,
    }


def test_help_lists_each_code_once_with_its_meaning(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    text = " ".join(result.stdout.split())  # the terminal wraps the epilog
    assert " ".join(exit_codes_epilog().split()) in text
    listed = [int(n) for n in re.findall(r"(?:Exit codes:|;) (\d+) ", text)]
    assert listed == [int(code) for code in EXIT_CODES]
    assert "69 a required command-line tool is not installed" in text  # missing before
    assert text.count("backend unreachable") == 1
