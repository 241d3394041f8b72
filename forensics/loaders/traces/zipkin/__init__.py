"""Zipkin v2 JSON (:mod:`.zipkin`: sniff, registration, load). General path: SQL
(:mod:`.sql`); fast path: Arrow (:mod:`.arrow`); shared client/server halves and 64-bit trace
ids joined over the whole file (:mod:`.joins`)."""
