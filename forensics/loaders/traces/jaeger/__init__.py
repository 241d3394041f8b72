"""Jaeger JSON (:mod:`.jaeger`: sniff, registration, load) and the query API v3
(:mod:`.jaeger_v3`). General path: SQL (:mod:`.sql`); fast path: Arrow (:mod:`.arrow`)."""
