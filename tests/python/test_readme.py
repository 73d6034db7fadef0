"""The README's DuckDB and Polars examples run against a real finished run."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_run(synthetic_run, tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert len(blocks) >= 2, "the README shows a DuckDB and a Polars example"
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "example").symlink_to(synthetic_run)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert "rel_change" in printed
