"""What the Jaeger and Zipkin loaders share: streaming JSON documents into runs of spans, the
SQL helpers for ids and times (:mod:`.common`) and the Arrow conversion of those runs
(:mod:`.arrow`)."""
