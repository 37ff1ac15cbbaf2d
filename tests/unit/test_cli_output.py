"""How `gl` prints a list: as `kubectl get` does, so it reads, greps and awks the same way."""

from __future__ import annotations

import json

from gl_cli import output


def test_columns_are_as_wide_as_their_longest_cell_and_three_spaces_apart():
    text = output.columns_text(["NAME", "DISPLAY NAME", "LATEST"],
                               [["gl-cbam-calculator-v2", "CBAM Calculator", "2.4.0"], ["x", "", ""]])
    assert text.splitlines() == [
        "NAME                    DISPLAY NAME      LATEST",
        "gl-cbam-calculator-v2   CBAM Calculator   2.4.0",
        "x",  # no trailing blanks where the last cells are empty
    ]


def test_a_table_has_upper_case_headings_and_lists_joined_by_commas(capsys):
    output.emit([{"name": "a", "tags": ["cbam", "eu"], "none": None}],
                [("Name", "name"), ("Tags", "tags"), ("Score", "none")], "table")
    shown = capsys.readouterr()
    assert shown.out.splitlines() == ["NAME   TAGS      SCORE", "a      cbam,eu"] and shown.err == ""


def test_an_empty_table_says_so_on_stderr_and_prints_nothing_on_stdout(capsys):
    output.emit([], [("Name", "name")], "table", title="what these are")
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err == "No resources found.\n"


def test_json_keeps_every_field_and_the_kind(capsys):
    output.emit([{"name": "a", "extra": 1}], [("Name", "name")], "json", kind="AgentList")
    assert json.loads(capsys.readouterr().out) == {"kind": "AgentList", "items": [{"name": "a", "extra": 1}]}


def test_a_cell_never_breaks_its_row():
    text = output.columns_text(["WHY"], [[output._cell("two\nlines")]])
    assert text.splitlines() == ["WHY", "two lines"]
