"""The public examples in forensics.synth docstrings run."""
from __future__ import annotations

import doctest

import forensics.synth
import forensics.synth.builder


def test_synth_doctests():
    for module in (forensics.synth, forensics.synth.builder):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
