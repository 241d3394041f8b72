"""What a service process is told by the generator: identity, dependencies, knobs.

The generator serializes one :class:`ServiceSpec` per process into the ``REALAPP_SPEC``
environment variable; :mod:`realapp.service` reads it back.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

#: every service of the application: name -> (version, what it is)
SERVICES: dict[str, tuple[str, str]] = {
    "api-gateway": ("2.3.1", "entry point: /api/products, /api/search, /api/checkout, /api/fleets"),
    "catalog-service": ("1.7.9", "products and search; calls inventory and pricing"),
    "inventory-service": ("3.1.0", "stock levels in sqlite through SQLAlchemy"),
    "pricing-service": ("1.12.4", "prices and quotes"),
    "fleet-service": ("0.9.2", "fleet status: fans out to device-api in parallel"),
    "device-api": ("4.0.0", "one device's status"),
    "payments-provider": ("", "external payment API, not traced (plain http.server)"),
    "geoip": ("", "external geo-IP API, not traced (plain http.server)"),
}

#: host names of the external services (what the caller's ``http.url`` shows)
EXTERNAL_HOSTS = {"payments-provider": "api.payments.example", "geoip": "geoip.example"}

#: who calls whom (for the fault generator's truth and the README)
CALLS: dict[str, tuple[str, ...]] = {
    "api-gateway": ("catalog-service", "pricing-service", "inventory-service", "fleet-service", "payments-provider",
                    "geoip"),
    "catalog-service": ("inventory-service", "pricing-service"),
    "fleet-service": ("device-api",),
}


@dataclass
class ServiceSpec:
    """One service process."""

    name: str
    version: str
    port: int
    #: pod and host names put in the resource (``k8s.pod.name``, ``host.name``)
    pod: str
    host: str
    #: dependency name -> base URL (``http://catalog-service:PORT``)
    deps: dict[str, str] = field(default_factory=dict)
    #: host name -> address, installed as the process's resolver (a hosts file for the process)
    hosts: dict[str, str] = field(default_factory=dict)
    #: behaviour switches (see :mod:`realapp.apps`)
    knobs: dict[str, Any] = field(default_factory=dict)
    #: this host's clock offset (ms, positive = ahead): shifts every timestamp the process takes
    clock_offset_ms: float = 0.0
    #: where the process writes its JSON log lines
    log_path: str = ""
    #: the process's OpenTelemetry environment (exporters, endpoints, semconv opt-in ...)
    otel_env: dict[str, str] = field(default_factory=dict)
    #: traced by the OpenTelemetry SDK (False for the external services)
    traced: bool = True
    #: run process metrics (CPU time, memory, threads) through the metrics SDK
    process_metrics: bool = False

    def to_env(self) -> dict[str, str]:
        return {"REALAPP_SPEC": json.dumps(dataclasses.asdict(self))}

    @classmethod
    def from_env(cls) -> "ServiceSpec":
        return cls(**json.loads(os.environ["REALAPP_SPEC"]))
