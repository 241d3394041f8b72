"""Logs, deploy events and Kubernetes events of a synthetic incident.

* logs: JSON lines as a structured logger writes them (``ts`` RFC 3339 UTC with milliseconds,
  ``level``, ``service``, ``msg``, ``trace_id``/``span_id`` for correlation, plus fields).
* deploys: JSON lines ``{"time", "service", "version", "kind": "deploy", "description"}``.
* Kubernetes events: ``kubectl get events -o json`` (a ``List`` of ``v1/Event`` items).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

import orjson

from .model import LogRecord
from .topology import BASE_NS, ENVIRONMENT, NAMESPACE, SERVICES, Deploy, pod_names, replica_set


class LogWriter:
    """Streams log records (sorted by time within each chunk) as JSON lines."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.lines = 0
        self._sec: tuple[int, str] = (-1, "")

    def _ts(self, ns: int) -> str:
        sec, rem = divmod(ns, 1_000_000_000)
        if sec != self._sec[0]:
            self._sec = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
        return f"{self._sec[1]}.{rem // 1_000_000:03d}Z"

    def write(self, records: list[LogRecord]) -> None:
        out = []
        for r in sorted(records, key=lambda r: r.time_ns):
            d: dict[str, Any] = {"ts": self._ts(r.time_ns), "level": r.level, "service": r.res.service,
                                 "version": r.res.version, "host": r.res.host, "env": ENVIRONMENT}
            if r.trace_id:
                d["trace_id"] = r.trace_id
                d["span_id"] = r.span_id
            d["msg"] = r.message
            d.update(r.fields)
            out.append(orjson.dumps(d))
        if out:
            self.fh.write(b"\n".join(out) + b"\n")
        self.lines += len(out)


def iso(ns: int, *, millis: bool = True) -> str:
    """RFC 3339 UTC text for Unix nanoseconds (``...Z``)."""
    dt = datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


def at_ns(seconds: float) -> int:
    """Window-relative seconds → Unix nanoseconds."""
    return BASE_NS + int(round(seconds * 1e9))


def deploy_lines(deploys: list[Deploy]) -> bytes:
    """deploys.jsonl content: one deploy event per line, in time order."""
    out = []
    for d in sorted(deploys, key=lambda d: d.at_s):
        out.append(orjson.dumps({"time": iso(at_ns(d.at_s)), "service": d.service, "version": d.version,
                                 "previous_version": d.from_version, "kind": "deploy",
                                 "description": d.description, "environment": ENVIRONMENT,
                                 "author": "ci-bot", "change_id": _uid(f"{d.service}{d.version}")[:8]}))
    return b"\n".join(out) + (b"\n" if out else b"")


def _uid(text: str) -> str:
    h = hashlib.sha256(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass
class K8sEvent:
    """One Kubernetes event: ``at_s`` window seconds, the object it is about, reason and message."""

    at_s: float
    object_kind: str
    object_name: str
    reason: str
    message: str
    component: str
    type: str = "Normal"
    count: int = 1
    last_s: float | None = None

    def to_json(self, seq: int) -> dict:
        first, last = iso(at_ns(self.at_s), millis=False), iso(at_ns(self.last_s if self.last_s is not None else self.at_s), millis=False)
        name = f"{self.object_name}.{int(hashlib.sha256(f'{self.object_name}{self.reason}{seq}'.encode()).hexdigest()[:15], 16):x}"
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": _uid(name),
                         "resourceVersion": str(4_812_000 + seq), "creationTimestamp": first},
            "involvedObject": {"kind": self.object_kind, "namespace": NAMESPACE, "name": self.object_name,
                               "uid": _uid(self.object_name),
                               "apiVersion": "apps/v1" if self.object_kind in ("Deployment", "ReplicaSet") else "v1",
                               "resourceVersion": str(4_700_000 + seq)},
            "reason": self.reason, "message": self.message,
            "source": {"component": self.component} | ({"host": "ip-10-0-3-17.ec2.internal"} if self.component == "kubelet" else {}),
            "firstTimestamp": first, "lastTimestamp": last, "count": self.count, "type": self.type,
            "eventTime": None, "reportingComponent": self.component, "reportingInstance": "",
        }


def rollout_events(d: Deploy) -> list[K8sEvent]:
    """Events of a rolling update (or canary): replica sets scaled, pods scheduled, pulled, started."""
    spec = SERVICES[d.service]
    n_new = max(1, round(spec.replicas * d.fraction))
    new_rs, old_rs = replica_set(d.service, d.version), replica_set(d.service, d.from_version)
    deployment = d.service if d.fraction >= 1 else f"{d.service}-canary"
    image = f"registry.shop.internal/{d.service}:{d.version}"
    evs = [K8sEvent(d.at_s - 5, "Deployment", deployment, "ScalingReplicaSet",
                    f"Scaled up replica set {new_rs} to {n_new}", "deployment-controller")]
    step = d.rollout_s / max(n_new, 1)
    for i, pod in enumerate(pod_names(d.service, d.version, n_new)):
        t = d.at_s - 5 + i * step
        evs += [
            K8sEvent(t, "Pod", pod, "Scheduled", f"Successfully assigned {NAMESPACE}/{pod} to ip-10-0-3-{17 + i}.ec2.internal",
                     "default-scheduler"),
            K8sEvent(t + 1, "Pod", pod, "Pulling", f'Pulling image "{image}"', "kubelet"),
            K8sEvent(t + 3, "Pod", pod, "Pulled", f'Successfully pulled image "{image}" in 2.114s (2.114s including waiting)', "kubelet"),
            K8sEvent(t + 3, "Pod", pod, "Created", f"Created container {d.service}", "kubelet"),
            K8sEvent(t + 4, "Pod", pod, "Started", f"Started container {d.service}", "kubelet"),
        ]
    if d.fraction >= 1:
        evs.append(K8sEvent(d.at_s + d.rollout_s, "Deployment", d.service, "ScalingReplicaSet",
                            f"Scaled down replica set {old_rs} to 0 from {spec.replicas}", "deployment-controller"))
    return evs


def k8s_event_list(events: list[K8sEvent]) -> bytes:
    """``kubectl get events -o json`` output for ``events`` (sorted by time)."""
    items = [e.to_json(i) for i, e in enumerate(sorted(events, key=lambda e: (e.at_s, e.object_name, e.reason)))]
    return orjson.dumps({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}},
                        option=orjson.OPT_INDENT_2) + b"\n"
