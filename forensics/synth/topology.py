"""The synthetic shop: services, pods, versions, instrumentation scopes and latency parameters.

``api-gateway`` → ``catalog-service`` (``/search``, ``/item/{id}``) → ``inventory-service``,
``pricing-service``, ``postgres`` and ``redis``; ``POST /orders`` publishes to the ``orders``
Kafka topic consumed by ``order-worker``. Hosts are Kubernetes pods (``host.name`` is the pod
name, which changes with the replica set at a deploy).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

#: start of every synthetic incident window (UTC); the window lasts ``DURATION_S`` seconds
BASE_TIME = datetime(2026, 2, 18, 9, 30, tzinfo=timezone.utc)
BASE_NS = int(BASE_TIME.timestamp()) * 1_000_000_000
DURATION_S = 90 * 60
NAMESPACE = "shop"
ENVIRONMENT = "prod"

# span kinds as OTLP integers
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
KIND_NAMES = {INTERNAL: "internal", SERVER: "server", CLIENT: "client", PRODUCER: "producer", CONSUMER: "consumer"}
# span status codes as OTLP integers
UNSET, OK, ERROR = 0, 1, 2

#: instrumentation scopes (name, version) by the kind of work a span does
SCOPES = {
    "http": ("io.opentelemetry.http", "2.11.0"),
    "jdbc": ("io.opentelemetry.jdbc", "2.11.0"),
    "redis": ("io.opentelemetry.lettuce-5.1", "2.11.0"),
    "kafka": ("io.opentelemetry.kafka-clients-2.6", "2.11.0"),
    "app": ("com.shop.app", "1.0.0"),
}


@dataclass(frozen=True)
class Resource:
    """One pod of one service at one version: the OTLP resource of its spans."""

    service: str
    version: str
    host: str
    ip: str

    @property
    def attributes(self) -> list[tuple[str, str]]:
        return [
            ("service.name", self.service), ("service.version", self.version), ("service.namespace", NAMESPACE),
            ("host.name", self.host), ("k8s.pod.name", self.host), ("k8s.namespace.name", NAMESPACE),
            ("deployment.environment", ENVIRONMENT), ("telemetry.sdk.language", "java"),
            ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.version", "1.45.0"),
        ]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    version: str
    replicas: int
    port: int = 8080


SERVICES: dict[str, ServiceSpec] = {s.name: s for s in (
    ServiceSpec("api-gateway", "3.2.1", 3),
    ServiceSpec("catalog-service", "1.7.9", 4),
    ServiceSpec("inventory-service", "2.1.0", 3),
    ServiceSpec("pricing-service", "2.3.1", 10),
    ServiceSpec("order-worker", "1.4.2", 2),
)}

#: backing systems that only appear as client spans (system, server.address, port)
POSTGRES = ("postgresql", "postgres.shop.svc.cluster.local", 5432)
REDIS = ("redis", "redis.shop.svc.cluster.local", 6379)
KAFKA = ("kafka", "kafka-0.kafka.shop.svc.cluster.local", 9092)
ORDERS_TOPIC = "orders"
ORDERS_PARTITIONS = 6

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _hash(text: str, n: int) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:n])


def replica_set(service: str, version: str) -> str:
    """Kubernetes replica-set name of a service at a version, e.g. ``catalog-service-7d9f8b6c4``."""
    return f"{service}-{_hash(service + '@' + version, 9)}"


def pod_names(service: str, version: str, replicas: int) -> list[str]:
    """Pod names of a replica set (stable for a service and version)."""
    rs = replica_set(service, version)
    return [f"{rs}-{_hash(f'{rs}/{i}', 5)}" for i in range(replicas)]


def pods(service: str, version: str, replicas: int | None = None) -> list[Resource]:
    """The resources (pods) of ``service`` running ``version``."""
    spec = SERVICES[service]
    n = spec.replicas if replicas is None else replicas
    base = list(SERVICES).index(service) + 1
    salt = int(hashlib.sha256(version.encode()).hexdigest()[:2], 16) % 100
    return [Resource(service, version, name, f"10.0.{base}.{10 + salt + i}")
            for i, name in enumerate(pod_names(service, version, n))]


@dataclass(frozen=True)
class Latency:
    """Lognormal latency: median in milliseconds and sigma (log scale)."""

    median_ms: float
    sigma: float


#: self time / network latencies of the operations (milliseconds)
LATENCY: dict[str, Latency] = {
    "gateway": Latency(2.0, 0.4),
    "net": Latency(0.6, 0.3),
    "search_self": Latency(65.0, 0.7),
    "item_self": Latency(12.0, 0.5),
    "orders_self": Latency(8.0, 0.4),
    "redis": Latency(0.8, 0.4),
    "pg_search": Latency(28.0, 0.6),
    "pg_item": Latency(6.0, 0.5),
    "pg_batch": Latency(9.0, 0.5),
    "pg_insert": Latency(4.0, 0.5),
    "inventory_batch": Latency(14.0, 0.5),
    "inventory_item": Latency(28.0, 0.35),
    "inventory_reserve": Latency(10.0, 0.4),
    "pricing_batch": Latency(22.0, 0.5),
    "pricing_item": Latency(7.0, 0.5),
    "pricing_quote": Latency(9.0, 0.45),
    "queue_lag": Latency(40.0, 0.8),
    "consume_self": Latency(6.0, 0.4),
}


@dataclass
class Deploy:
    """A rollout of ``service`` to ``version`` at ``at_s`` (seconds into the window).

    ``fraction`` < 1 is a canary: that share of pods (at least one) runs the new version.
    """

    service: str
    version: str
    at_s: float
    description: str
    fraction: float = 1.0
    rollout_s: float = 120.0
    from_version: str = field(default="")

    def __post_init__(self) -> None:
        if not self.from_version:
            self.from_version = SERVICES[self.service].version
