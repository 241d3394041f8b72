"""Kubernetes names, one definition for every loader: the workload a pod or replica set belongs
to, and the parts of an image reference. SQL expressions over other expressions.

One workload gets one name whatever the export shows: a Deployment's pods are
``<workload>-<pod-template-hash>-<suffix>`` (the hash is 6-10 characters of Kubernetes' safe
alphabet, or, before Kubernetes 1.8, a 9-10 digit number; the suffix 5 characters), its
replica sets ``<workload>-<hash>``, a StatefulSet's pods ``<workload>-<ordinal>``, a DaemonSet's
or Job's pods ``<workload>-<suffix>``.
"""
from __future__ import annotations

#: the alphabet Kubernetes uses for generated name suffixes (no vowels, no 0/1/3)
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
#: a replica set's pod-template hash: safe alphabet, or the old numeric (FNV) hash
POD_TEMPLATE_HASH = f"(?:{SAFE}{{6,10}}|[0-9]{{9,10}})"
#: a pod's generated suffix (older clusters used any lowercase letter or digit)
POD_SUFFIX = "[a-z0-9]{5}"
#: containers that run beside the application and are not it: service meshes, log shippers,
#: secret agents (their image is never the workload's version)
SIDECARS = ("istio-proxy", "istio-init", "linkerd-proxy", "linkerd-init", "envoy", "envoy-sidecar",
            "cloud-sql-proxy", "cloudsql-proxy", "vault-agent", "vault-agent-init", "fluent-bit", "fluentd",
            "filebeat", "datadog-agent", "otel-collector", "opentelemetry-collector", "jaeger-agent", "consul-connect-envoy")


def workload_sql(name: str, kind: str) -> str:
    """Workload name of a ``kind`` ('Pod', 'ReplicaSet' or another kind, kept as is) object name."""
    return f"""(CASE
  WHEN {kind} = 'Pod' THEN coalesce(
    nullif(regexp_extract({name}, '^(.+)-{POD_TEMPLATE_HASH}-{POD_SUFFIX}$', 1), ''),
    nullif(regexp_extract({name}, '^(.+)-[0-9]{{1,5}}$', 1), ''),
    nullif(regexp_extract({name}, '^(.+)-{SAFE}{{5}}$', 1), ''), {name})
  WHEN {kind} = 'ReplicaSet' THEN coalesce(nullif(regexp_extract({name}, '^(.+)-{POD_TEMPLATE_HASH}$', 1), ''), {name})
  ELSE {name} END)"""


def pod_workload_sql(name: str) -> str:
    """Workload of a pod name (see :func:`workload_sql`)."""
    return workload_sql(name, "'Pod'")


def image_tag_sql(image: str) -> str:
    """Tag of an image reference (NULL for digest-only references)."""
    return f"nullif(regexp_extract(split_part({image}, '@', 1), ':([A-Za-z0-9_][A-Za-z0-9_.-]*)$', 1), '')"


def image_name_sql(image: str) -> str:
    """Last path segment of an image's repository (``registry:5000/shop/catalog-service:1.8`` ->
    ``catalog-service``)."""
    return (f"regexp_extract(regexp_replace(split_part({image}, '@', 1), ':[A-Za-z0-9_][A-Za-z0-9_.-]*$', ''), "
            f"'([^/]+)$', 1)")


def container_rank_sql(container: str, image: str, workload: str, init: str = "false") -> str:
    """How surely a container is the workload's own (0 best): its name or image name is the
    workload's (or the workload's name starts with it: ``catalog`` in ``catalog-service``), 1 an
    application container, 2 an init container, 3 a known sidecar."""
    sidecars = ", ".join(f"'{s}'" for s in SIDECARS)
    img = image_name_sql(image)
    return f"""(CASE
  WHEN {container} = {workload} OR {img} = {workload} THEN 0
  WHEN {container} IN ({sidecars}) OR {img} IN ({sidecars}) OR {img} LIKE '%proxy%' THEN 3
  WHEN {init} THEN 2
  WHEN starts_with({workload}, {container} || '-') OR starts_with({workload}, {img} || '-') THEN 0
  ELSE 1 END)"""
