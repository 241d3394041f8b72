"""Metric formats: Prometheus text exposition (:mod:`.prometheus`), Prometheus HTTP API
responses (:mod:`.prom_api`) and CSV (:mod:`.metrics_csv`). OTLP metrics are read by
:mod:`forensics.loaders.traces.otlp`."""
