"""OTLP: JSON (:mod:`.otlp_json`, collector file-exporter lines and documents) and protobuf
(:mod:`.otlp_proto`). The general path is SQL over OTLP request JSON (:mod:`.requests`,
:mod:`.sql`, :mod:`.metrics`, ``macros.sql``); the fast path for collector lines is Arrow
(:mod:`.arrow`); large documents are streamed resource by resource (:mod:`.document_stream`).

:mod:`.requests` is the OTLP mapping other formats carrying OTLP reuse (Jaeger's API v3)."""
