"""What the telemetry means: one definition per concept, used by the detectors, the trace
analyses, the figures, the notebook queries and the report (so their numbers agree).

* :mod:`~forensics.semantics.failure`: whether a span failed (:func:`is_error_sql`);
* :mod:`~forensics.semantics.calls`: whether a span is an outbound call and which dependency it
  calls (:func:`is_call_sql`, :func:`call_target_sql`);
* :mod:`~forensics.semantics.operations`: the operation of a server span, of a call, of any span
  (:func:`server_operation_sql`, :func:`call_operation_sql`, :func:`span_operation_sql`);
* :mod:`~forensics.semantics.logs`: whether a log line is a warning or worse (:func:`warning_sql`);
* :mod:`~forensics.semantics.normalize`: ids, numbers and literals out of names, paths and
  statements (``GET /inventory/{id}``).

Each returns a SQL expression over trusted aliases and column names, never over values.
"""
from .calls import call_target_sql, is_call_sql
from .failure import is_error_sql
from .logs import warning_sql
from .operations import (OP_COLUMNS, call_operation_sql, operation_key_sql, operations_sql, server_operation_key_sql,
                         server_operation_sql, server_operations_sql, span_operation_sql,
                         with_server_operation_sql)

__all__ = ["OP_COLUMNS", "call_operation_sql", "call_target_sql", "is_call_sql", "is_error_sql", "operation_key_sql",
           "operations_sql", "server_operation_key_sql", "server_operation_sql", "server_operations_sql",
           "span_operation_sql", "warning_sql", "with_server_operation_sql"]
