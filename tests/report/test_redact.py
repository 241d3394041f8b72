"""Redaction: every documented class is masked, ordinary telemetry is left alone, values are
redacted before they are serialized (an escape cannot split a secret from its pattern)."""
from __future__ import annotations

import orjson
import pytest

from forensics.report.redact import NoRedaction, Redactor, plugin_kinds

from .hostile import SECRETS


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_documented_class_is_masked(kind):
    text, needle = SECRETS[kind]
    out = Redactor().text(f"before {text} after")
    assert needle not in out and "[REDACTED:" in out
    assert out.startswith("before ")


@pytest.mark.parametrize("text", [
    "0f83e49851ded865744f5d229d049f16", "GET /inventory/{id}", "catalog-service 1.8.0 -> 1.7.9",
    "10:15:00.123", "2026-02-18T10:15:00Z", "mac 00:1a:2b:3c:4d:5e", "p99 359 ms -> 2.5 s",
    "SELECT * FROM items WHERE id = ?", "deadlock detected while reading stock", "user=bob region=eu-west-1",
])
def test_ordinary_telemetry_is_left_alone(text):
    r = Redactor()
    assert r.text(text) == text and r.counts == {}


def test_unquoted_assignment_masks_the_value_not_the_rest_of_the_line():
    assert Redactor().text("SECRETKEY=abc123xyz user=bob") == "SECRETKEY=[REDACTED:secret_keyword] user=bob"


def test_values_inside_json_are_redacted_before_serialization():
    evidence = {"note": 'login password="hunter2\\"quoted"', "url": "redis://:pw12345678@cache:6379"}
    out = orjson.dumps(Redactor().obj(evidence)).decode()
    assert "hunter2" not in out and "pw12345678" not in out


def test_detect_secrets_plugins_are_used_and_counted():
    kinds = plugin_kinds()
    assert {"aws_access_key", "json_web_token", "secret_keyword", "github_token"} <= set(kinds)
    assert "hex_high_entropy_string" not in kinds  # would mask every trace id
    r = Redactor()
    r.text("AKIAIOSFODNN7EXAMPLE and AKIAIOSFODNN7EXAMPLE")
    assert r.counts == {"aws_access_key": 2}


def test_extra_patterns_and_no_redaction():
    assert Redactor(extra=[("customer", r"ACME-\d+")]).text("order ACME-42") == "order [REDACTED:customer]"
    assert NoRedaction().text("a@b.example") == "a@b.example"
