"""Trace formats: OTLP (:mod:`.otlp`, also its logs and metrics), Jaeger (:mod:`.jaeger`) and
Zipkin (:mod:`.zipkin`); :mod:`.jaeger_zipkin` holds what the Jaeger and Zipkin loaders share."""
