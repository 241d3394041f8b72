"""Kubernetes events (v1 and events.k8s.io/v1) and pod status loaders."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.core.sniff import sniff

DATA = Path(__file__).parent.parent / "data" / "k8s"


def _t(m: int, s: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 2, 18, 10, m, s, us, tzinfo=timezone.utc)


def _events(case, cols="source_offset, time, end_time, kind, service, version, reason, severity, count"):
    return case.sql(f"SELECT {cols} FROM events ORDER BY source_offset, time, reason").rows()


def _attrs(case, offset: int, reason: str) -> dict:
    rows = case.sql("SELECT map_entries(attributes) AS a FROM events WHERE source_offset = ? AND reason = ?", [offset, reason]).dicts()
    return {e["key"]: e["value"] for e in rows[0]["a"]}


@pytest.mark.parametrize("name,fmt", [("events.json", "k8s_events"), ("events_k8s_io.json", "k8s_events"),
                                      ("pods.json", "k8s_pods")])
def test_sniffed(name, fmt):
    assert sniff(str(DATA / name)) == fmt


def test_core_v1_event_list():
    case = forensics.open_case()
    report = case.load(DATA / "events.json")
    assert _events(case) == [
        (0, _t(5, 1), _t(5, 1), "deploy", "catalog-service", "1.8.0", "ScalingReplicaSet", "normal", 1),  # tag its pods pulled
        (1, _t(5, 40), _t(5, 40), "scale", "catalog-service", None, "ScalingReplicaSet", "normal", 1),
        (2, _t(6, 10), _t(6, 10), "scale", "catalog-service", None, "ScalingReplicaSet", "normal", 1),
        (3, _t(5, 3), _t(5, 3), "k8s", "catalog-service", "1.8.0", "Pulling", "normal", 1),
        (4, _t(9, 12), _t(14, 55), "k8s", "inventory", None, "Unhealthy", "warning", 14),  # app.kubernetes.io/name label
        (5, _t(7, 0, 123456), None, "k8s", "postgres", None, "FailedScheduling", "warning", 1),  # eventTime, ordinal
    ]
    assert _attrs(case, 0, "ScalingReplicaSet") == {
        "namespace": "prod", "object_kind": "Deployment", "object_name": "catalog-service",
        "component": "deployment-controller", "replica_set": "catalog-service-7d9f8b6c5"}
    assert _attrs(case, 3, "Pulling")["host"] == "ip-10-0-3-17.eu-west-1.compute.internal"
    assert _attrs(case, 5, "FailedScheduling")["component"] == "default-scheduler"
    assert case.sql("SELECT message FROM events WHERE source_offset = 4").scalar().startswith("Readiness probe failed: Get ")
    assert case.sql("SELECT source_offset, reason_code FROM rejects").rows() == [(6, "bad_time")]
    assert (report.records_read, report.rows_loaded) == (7, 6)


def test_events_k8s_io_v1_field_names():
    case = forensics.open_case()
    case.load(DATA / "events_k8s_io.json")
    assert _events(case, "source_offset, time, end_time, kind, service, reason, severity, count, message") == [
        (0, _t(12, 30), _t(13, 30), "k8s", "catalog-service", "BackOff", "warning", 3,
         "Back-off restarting failed container catalog in pod catalog-service-7d9f8b6c5-x2x9z_prod"),
        (1, _t(15, 0, 500000), _t(19), "scale", "catalog-service", "SuccessfulRescale", "normal", 4,
         "New size: 6; reason: cpu resource utilization (percentage of request) above target"),
    ]
    assert _attrs(case, 0, "BackOff")["component"] == "kubelet"
    assert _attrs(case, 1, "SuccessfulRescale")["action"] == "SuccessfulRescale"


def test_pod_list_restarts_oom_waiting_and_versions():
    case = forensics.open_case()
    case.load(DATA / "pods.json")
    assert _events(case, "source_offset, time, service, version, reason, severity, count") == [
        (0, _t(12, 29), "catalog-service", "1.8.0", "CrashLoopBackOff", "warning", 1),
        (0, _t(12, 29), "catalog-service", "1.8.0", "OOMKilled", "warning", 1),
        (0, _t(12, 29), "catalog-service", "1.8.0", "Restarted", "warning", 3),
        (1, _t(9, 40, 500000), "inventory-service", None, "Error", "warning", 1),  # digest only: no tag
        (1, _t(9, 41), "inventory-service", None, "Restarted", "warning", 1),
        (2, _t(20), "search-indexer", "2.0.0-rc.1", "ImagePullBackOff", "warning", 1),
        (3, _t(0, 31), "db-migrate", "1.8.0", "Completed", "normal", 1),
    ]
    oom = _attrs(case, 0, "OOMKilled")
    assert oom["replica_set"] == "catalog-service-7d9f8b6c5"
    assert (oom["exit_code"], oom["started_at"], oom["finished_at"], oom["container"], oom["state"]) == (
        "137", "2026-02-18T10:11:02Z", "2026-02-18T10:12:29Z", "catalog", "last")
    assert case.sql("SELECT message FROM events WHERE reason = 'OOMKilled'").scalar() == \
        "container catalog terminated: OOMKilled (exit code 137)"
    assert case.sql("SELECT DISTINCT kind FROM events").rows() == [("k8s",)]


def test_wrong_items_and_strict(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text('{"kind":"List","items":[{"kind":"Event","involvedObject":{"kind":"Pod","name":"a-0"},'
                    '"reason":"Killing","firstTimestamp":"2026-02-18T10:00:00Z"},{"kind":"Service","metadata":{"name":"x"}}]}')
    case = forensics.open_case()
    case.load(path, format="k8s_events")
    assert case.sql("SELECT source_offset, reason_code, reason FROM rejects").rows() == [
        (1, "wrong_shape", "item of kind Service is not a Event")]
    assert case.sql("SELECT service FROM events").rows() == [("a",)]
    with pytest.raises(StrictModeError) as err:
        forensics.open_case().load(DATA / "events.json", strict=True)
    assert "events.json" in str(err.value) and "offset 6" in str(err.value)


def test_api_event_list_without_item_kinds(tmp_path):
    path = tmp_path / "api.json"
    path.write_text('{"kind":"EventList","apiVersion":"v1","items":[{"involvedObject":{"kind":"ReplicaSet",'
                    '"name":"catalog-service-7d9f8b6c5"},"reason":"SuccessfulCreate","message":"Created pod",'
                    '"type":"Normal","firstTimestamp":"2026-02-18T10:05:02Z"}]}')
    case = forensics.open_case()
    case.load(path)
    assert case.sql("SELECT time, kind, service, reason FROM events").rows() == [
        (_t(5, 2), "k8s", "catalog-service", "SuccessfulCreate")]


@pytest.mark.parametrize("name, kind, workload", [
    ("catalog-service-7d9f8b6c5-x2x9z", "Pod", "catalog-service"),
    ("catalog-service-4234284026-pbt8m", "Pod", "catalog-service"),  # pre-1.8 numeric pod-template hash
    ("catalog-service-423428402-7ci7o", "Pod", "catalog-service"),  # 9 digits, old suffix alphabet
    ("catalog-service-7d9f8b6c5", "ReplicaSet", "catalog-service"),
    ("catalog-service-4234284026", "ReplicaSet", "catalog-service"),
    ("postgres-0", "Pod", "postgres"),
    ("node-exporter-x7k2q", "Pod", "node-exporter"),
    ("catalog-service", "Deployment", "catalog-service"),
    ("web", "Pod", "web"),
])
def test_workload_names(name, kind, workload):
    import duckdb

    from forensics.loaders.core.kubernetes import workload_sql

    assert duckdb.connect().execute(f"SELECT {workload_sql('$n', '$k')}", {"n": name, "k": kind}).fetchone()[0] == workload


def test_one_workload_one_name_and_the_version_of_its_own_container():
    case = forensics.open_case()
    case.load(DATA / "events_sidecar.json")
    rows = case.sql("SELECT source_offset, kind, service, version, reason FROM events ORDER BY source_offset").rows()
    assert rows == [
        (0, "deploy", "checkout", "2.4.1", "ScalingReplicaSet"),  # the app's tag, not istio's (pulled first)
        (1, "k8s", "checkout", None, "Pulling"),  # init container: its tag is not the version
        (2, "k8s", "checkout", None, "Pulling"),  # sidecar
        (3, "k8s", "checkout", "2.4.1", "Pulled"),
        (4, "scale", "checkout", None, "ScalingReplicaSet"),
        (5, "k8s", "checkout", None, "Killing"),  # old numeric hash pod
        (6, "k8s", "checkout", None, "SuccessfulDelete"),
        (7, "k8s", "checkout", None, "SuccessfulCreate"),
        (8, "k8s", "redis-cache", None, "Started"),
        (9, "k8s", "node-exporter", None, "Started"),
    ]
    assert _attrs(case, 2, "Pulling")["image"] == "docker.io/istio/proxyv2:1.20.3"


def test_pod_version_is_its_own_containers_not_the_sidecars():
    case = forensics.open_case()
    case.load(DATA / "pods_sidecar.json")
    assert _events(case, "source_offset, service, version, reason, count") == [
        (0, "checkout", "2.4.1", "Completed", 1),  # istio-init finished
        (0, "checkout", "2.4.1", "OOMKilled", 1),  # the sidecar was killed: the pod's version is still the app's
        (0, "checkout", "2.4.1", "Restarted", 1),
        (1, "checkout", "2.4.0", "Restarted", 2),
    ]
    assert _attrs(case, 0, "OOMKilled")["container"] == "istio-proxy"
    assert _attrs(case, 0, "OOMKilled")["image"] == "docker.io/istio/proxyv2:1.20.3"
