"""The public figure functions: keyword-only options, documented parameters."""
from __future__ import annotations

import inspect

import pytest

import forensics.viz as viz


@pytest.mark.parametrize("name", viz.__all__)
def test_options_are_keyword_only_and_documented(name):
    fn = getattr(viz, name)
    params = list(inspect.signature(fn).parameters.values())
    positional = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional in (["case"], ["case", "trace_id"], ["compare_result"]), positional
    doc = inspect.getdoc(fn) or ""
    assert "Returns" in doc or name == "service_graph"
    documented = doc if name != "service_graph" else doc + inspect.getdoc(viz.service_graph_nx)
    for p in params:
        assert p.name in documented, f"{name}: parameter {p.name} is not documented"
