"""What a failed span is: the one definition of "error" for detectors, analyses, figures, the
notebook queries and the report.

A span failed when any of these holds:

1. its status is ``error`` (OTLP ``STATUS_CODE_ERROR``). The Jaeger and Zipkin loaders map the
   OpenTracing ``error=true`` tag and Zipkin's ``error`` tag to it at load time, and
   OpenTelemetry's OpenTracing shims map the tag themselves (the OpenTelemetry "OpenTracing
   compatibility" specification requires it), so the tag is not read again here;
2. an HTTP status of 500 or more (:data:`HTTP_ERROR_MIN`), whatever the span's kind;
3. HTTP 429 on a span that is not a server or consumer span: the caller was turned away (the
   server that answered 429 did what it meant to, as OpenTelemetry's HTTP conventions leave 4xx
   unset on server spans);
4. a status message naming a timeout or an expired deadline (:data:`TIMEOUT_RE`: ``timeout``,
   ``timed out``, ``time-out``, ``deadline exceeded``, ``DEADLINE_EXCEEDED``), whatever the status
   says (instrumentations that only record the exception text);
5. a gRPC status code that OpenTelemetry's gRPC conventions count as an error
   (``rpc.grpc.status_code``, or its newer name ``rpc.response.status_code``, read only for spans
   with ``rpc_system = 'grpc'``): any code but ``OK`` on a client span; ``UNKNOWN``,
   ``DEADLINE_EXCEEDED``, ``UNIMPLEMENTED``, ``INTERNAL``, ``UNAVAILABLE`` or ``DATA_LOSS`` on a
   server span (:data:`GRPC_SERVER_ERRORS`).

The expression is never NULL. It reads only promoted columns and, for gRPC spans alone, two
attribute keys, so it costs a few comparisons per span.
"""
from __future__ import annotations

#: HTTP status codes from this one up are failures on any span
HTTP_ERROR_MIN = 500
#: HTTP status that is a failure for the caller (client/producer/internal spans) only
HTTP_TOO_MANY_REQUESTS = 429
#: a status message matching this (RE2, lower-cased text) names a timeout or an expired deadline
TIMEOUT_RE = r"time[ d_-]*out|deadline[ _]exceeded"
#: gRPC codes (number and name) that are errors on a server span (OpenTelemetry gRPC conventions)
GRPC_SERVER_ERRORS = {2: "UNKNOWN", 4: "DEADLINE_EXCEEDED", 12: "UNIMPLEMENTED", 13: "INTERNAL",
                      14: "UNAVAILABLE", 15: "DATA_LOSS"}
#: attribute keys holding a span's gRPC status code (number, or name in the newer convention)
GRPC_STATUS_KEYS = ("rpc.grpc.status_code", "rpc.response.status_code")


def _col(s: str | None, column: str) -> str:
    return f"{s}.{column}" if s else column


def _grpc_failed_sql(s: str | None) -> str:
    attrs = _col(s, "attributes")
    code = "upper(coalesce(" + ", ".join(f"{attrs}['{k}']" for k in GRPC_STATUS_KEYS) + "))"
    server = ", ".join(f"'{n}', '{c}'" for c, n in GRPC_SERVER_ERRORS.items())
    return (f"CASE WHEN {_col(s, 'rpc_system')} = 'grpc' THEN "
            f"CASE WHEN {_col(s, 'kind')} IN ('server', 'consumer') THEN {code} IN ({server}) "
            f"ELSE {code} NOT IN ('0', 'OK') END ELSE false END")


def is_error_sql(s: str | None = "s") -> str:
    """Whether a span aliased ``s`` failed (BOOLEAN, never NULL; see the module rules).

    ``s=None`` reads unqualified columns (for a query over one relation).
    """
    status, code = _col(s, "status"), _col(s, "http_status_code")
    message = _col(s, "status_message")
    return (f"coalesce({status} = 'error' OR coalesce({code}, 0) >= {HTTP_ERROR_MIN} "
            f"OR ({code} = {HTTP_TOO_MANY_REQUESTS} AND {_col(s, 'kind')} NOT IN ('server', 'consumer')) "
            f"OR CASE WHEN {message} IS NULL THEN false ELSE regexp_matches(lower({message}), '{TIMEOUT_RE}') END "
            f"OR {_grpc_failed_sql(s)}, false)")
