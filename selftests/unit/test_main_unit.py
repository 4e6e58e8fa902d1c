"""The mailaudit command makes path options and test paths absolute, and nothing else."""

from pathlib import Path

from mailaudit.__main__ import absolute_args


def test_path_options_become_absolute_in_both_forms(tmp_path: Path):
    """--policy FILE and --html=FILE are resolved against the caller's folder."""
    args = absolute_args(["--policy", "p.yaml", "--html=out/r.html", "--results-json", "/abs/r.json"], tmp_path)
    assert args == ["--policy", str(tmp_path / "p.yaml"), f"--html={tmp_path / 'out' / 'r.html'}",
                    "--results-json", "/abs/r.json"]


def test_option_values_are_never_taken_for_test_paths(tmp_path: Path):
    """A value such as --dkim-selector lab stays as it is even when a folder 'lab' exists."""
    (tmp_path / "lab").mkdir()
    (tmp_path / "tests_x").mkdir()
    args = absolute_args(["--dkim-selector", "lab", "-k", "lab", "tests_x", "--intrusive"], tmp_path)
    assert args == ["--dkim-selector", "lab", "-k", "lab", str(tmp_path / "tests_x"), "--intrusive"]


def test_test_ids_keep_their_node_part(tmp_path: Path):
    """tests_x/test_a.py::test_b[x] keeps its '::' part."""
    (tmp_path / "tests_x").mkdir()
    (tmp_path / "tests_x" / "test_a.py").write_text("")
    [arg] = absolute_args(["tests_x/test_a.py::test_b[x]"], tmp_path)
    assert arg == f"{tmp_path / 'tests_x' / 'test_a.py'}::test_b[x]"
