"""Execute every notebook (jupytext percent files in notebooks/) with nbclient on the sample data.

Each notebook runs with ``notebooks/`` as its working directory, reading
``../sample_data/<incident>/``; when that directory is missing the notebook test is skipped with
a reason naming it.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

#: sample incident each notebook reads (relative to the repository root)
SAMPLES = {
    "01_incident_walkthrough.py": "sample_data/catalog_n_plus_one",
    "02_retry_storm.py": "sample_data/retry_storm",
    "03_ad_hoc_sql.py": "sample_data/catalog_n_plus_one",
    "04_bring_your_own_data.py": "sample_data/catalog_n_plus_one",
}
PRIVATE = re.compile(r"\bforensics(\.\w+)*\._\w+")


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def run_notebook(path: Path, cwd: Path, *, timeout_s: int = 900):
    """Convert a percent-format notebook with jupytext and execute it in a ``python3`` kernel."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout_s, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def test_every_notebook_has_a_sample_entry():
    names = [p.name for p in notebook_paths()]
    assert names == sorted(SAMPLES), names


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_is_a_clean_percent_script_using_the_public_api(path):
    text = path.read_text()
    ast.parse(text)  # valid Python as committed
    assert "# %%" in text and "format_name: percent" in text
    assert "kernelspec" in text and "name: python3" in text
    assert not PRIVATE.search(text), f"{path.name} uses a private module: {PRIVATE.search(text).group(0)}"
    import jupytext

    nb = jupytext.reads(text, fmt="py:percent")
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # nothing committed
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_executes(path):
    sample = ROOT / SAMPLES[path.name]
    if not sample.is_dir() or not any(sample.iterdir()):
        pytest.skip(f"sample data {SAMPLES[path.name]}/ is missing: generate it (forensics synth) to run {path.name}")
    nb = run_notebook(path, NOTEBOOKS)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # every figure cell produced a plotly figure
    mimes = {k for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes or "text/html" in mimes
