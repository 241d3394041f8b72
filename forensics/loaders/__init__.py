"""Loaders: every input format, registered with :func:`register_format`, in rooms by signal.

Layout::

    core/        the shared machinery: reading (io, file_positions, json_stream), sniffing (head,
                 sniff, registry), the LoadContext a loader writes through (context), loading
                 into a case in transactions (api, read_ahead), span columns (semconv,
                 arrow_spans), tabular fields and times (fields)
    traces/      otlp/, jaeger/, zipkin/ and jaeger_zipkin/ (what Jaeger and Zipkin share)
    logs/        json_logs/, logfmt/, plain/ and common.py (what they share)
    metrics/     prometheus/, prom_api/, metrics_csv/
    events/      k8s/, deploy_log/
    tables/      tabular dumps (CSV/Parquet) of the canonical tables

Adding a format: copy one format folder (e.g. ``logs/logfmt/``) into its signal's folder; its
module registers the format with ``@register_format(...)``. Discovery (:func:`formats`) imports
every module under the signal folders. A format's folder is its own: what two rooms need goes
to ``core/`` (``tests/test_imports.py`` checks both this and that there are no import cycles).
"""
from .core.api import FileReport, LoadReport, load
from .core.context import LoadContext
from .core.head import Head
from .core.registry import FORMATS, FormatSpec, formats, register_format
from .core.sniff import sniff

__all__ = ["FORMATS", "FileReport", "FormatSpec", "Head", "LoadContext", "LoadReport", "formats", "load",
           "register_format", "sniff"]
