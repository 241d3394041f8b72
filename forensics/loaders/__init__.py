"""Loaders: one module per export format family, registered with :func:`register_format`.

Adding a format: create ``forensics/loaders/<family>.py`` with a sniff function and a loader
decorated with ``@register_format(...)``; discovery imports every module of this package.
"""
from .api import FileReport, LoadReport, load
from .context import LoadContext
from .registry import FORMATS, FormatSpec, formats, register_format
from .sniff import Head, sniff

__all__ = ["FORMATS", "FileReport", "FormatSpec", "Head", "LoadContext", "LoadReport", "formats", "load",
           "register_format", "sniff"]
