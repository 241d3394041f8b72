"""Operation normalization: real-shaped span descriptions to stable operation names."""
from __future__ import annotations

import duckdb
import pytest

from forensics.semantics import call_operation_sql, call_target_sql, server_operation_sql
from forensics.semantics.normalize import normalize_text_sql, url_path_sql


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    yield c
    c.close()


def norm(con, value: str | None) -> str | None:
    return con.execute(f"SELECT {normalize_text_sql('v')} FROM (SELECT ?::VARCHAR AS v)", [value]).fetchall()[0][0]


@pytest.mark.parametrize("raw, expected", [
    ("GET /inventory/12345", "GET /inventory/{id}"),
    ("/inventory/9f1c0e6a-3b2d-4c1e-8f00-123456789abc/stock", "/inventory/{id}/stock"),
    ("/api/v1/users/1/orders/2", "/api/v1/users/{id}/orders/{id}"),
    ("/api/v2/items/sku-00123", "/api/v2/items/{id}"),
    ("/objects/5f2b9c1e8a7d6e0f4c3b2a19", "/objects/{id}"),
    ("SELECT * FROM items WHERE id = 42", "SELECT * FROM items WHERE id = ?"),
    ("SELECT * FROM items WHERE id IN (1, 2, 3)", "SELECT * FROM items WHERE id IN (?)"),
    ("select name from users where email = 'a@b.c' and nick = 'it''s'", "select name from users where email = ? and nick = ?"),
    ("SELECT * FROM t WHERE id = $1 AND k in ($2,$3)", "SELECT * FROM t WHERE id = ? AND k in (?)"),
    ("UPDATE stock SET qty = qty - 1.5\n  WHERE sku = 'abc'", "UPDATE stock SET qty = qty - ? WHERE sku = ?"),
    ("GET cache:user:9f1c0e6a4b2d3e", "GET cache:user:?"),
    ("HGET 0x7fff5fbff8a8", "HGET ?"),
    ("GET /search", "GET /search"),
    ("SELECT shop.orders", "SELECT shop.orders"),
])
def test_normalize_text(con, raw, expected):
    assert norm(con, raw) == expected


def test_normalize_is_idempotent_and_null_safe(con):
    once = norm(con, "SELECT * FROM items WHERE id IN (1, 2) AND x = 'y'")
    assert norm(con, once) == once
    assert norm(con, None) is None
    assert norm(con, "  GET /search ") == "GET /search"  # nothing to replace: only trimmed


@pytest.mark.parametrize("url, path", [
    ("http://inventory-service:8080/inventory/123?x=2#frag", "/inventory/123"),
    ("https://api.example.com/v1/items", "/v1/items"),
    ("/inventory/9?page=2", "/inventory/9"),
    ("http://host:80", None),
])
def test_url_path(con, url, path):
    assert con.execute(f"SELECT {url_path_sql('v')} FROM (SELECT ?::VARCHAR AS v)", [url]).fetchall()[0][0] == path


def _op_table(con, rows: list[dict]) -> list[tuple]:
    cols = ["name", "http_method", "url_template", "http_route", "db_statement", "http_url", "rpc_service",
            "rpc_method", "messaging_operation", "messaging_destination", "peer_service", "server_address",
            "db_system", "messaging_system", "ch_service", "ch_route", "ch_method"]
    values = [[r.get(k) for k in cols] for r in rows]
    select = " UNION ALL ".join("SELECT " + ", ".join(f"?::VARCHAR AS {k}" for k in cols)
                                + ", CAST(NULL AS MAP(VARCHAR, VARCHAR)) AS attributes" for _ in values)
    flat = [v for row in values for v in row]
    q = (f"SELECT {call_target_sql('c', 'ch')}, {call_operation_sql('c', 'ch')} FROM ({select}) c, "
         "LATERAL (SELECT c.ch_service AS service, c.ch_route AS http_route, c.ch_method AS http_method) ch")
    return con.execute(q, flat).fetchall()


def test_call_operation_preference_and_target(con):
    got = _op_table(con, [
        # url.template wins over the URL
        {"name": "GET", "http_method": "get", "url_template": "/inventory/{sku}",
         "http_url": "http://inv/inventory/1", "peer_service": "inventory-service"},
        # the called server span's route, service from the child
        {"name": "GET", "http_method": "GET", "http_url": "http://10.0.0.7:8080/inventory/77",
         "ch_service": "inventory-service", "ch_route": "/inventory/{id}", "server_address": "10.0.0.7"},
        # no child: normalized URL path, target from server.address
        {"name": "GET", "http_method": "GET", "http_url": "http://inventory:8080/inventory/77?fields=a",
         "server_address": "inventory"},
        # DB statement, target from db.system
        {"name": "SELECT", "db_statement": "SELECT * FROM items WHERE id = 42", "db_system": "postgresql"},
        # gRPC
        {"name": "inventory.Inventory/Get", "rpc_service": "inventory.Inventory", "rpc_method": "Get",
         "peer_service": "inventory-service"},
        # messaging
        {"name": "orders publish", "messaging_operation": "publish", "messaging_destination": "orders",
         "messaging_system": "kafka"},
        # only a name
        {"name": "GET /inventory/4411"},
    ])
    assert got == [
        ("inventory-service", "GET /inventory/{sku}"),
        ("inventory-service", "GET /inventory/{id}"),
        ("inventory", "GET /inventory/{id}"),
        ("postgresql", "SELECT * FROM items WHERE id = ?"),
        ("inventory-service", "inventory.Inventory/Get"),
        ("kafka", "publish orders"),
        ("unknown", "GET /inventory/{id}"),
    ]


def test_server_operation(con):
    q = (f"SELECT {server_operation_sql('s')} FROM (SELECT ?::VARCHAR AS name, ?::VARCHAR AS http_route, "
         "?::VARCHAR AS http_method) s")
    assert con.execute(q, ["GET /search", "/search", "GET"]).fetchall()[0][0] == "GET /search"
    assert con.execute(q, ["get", "/search", "get"]).fetchall()[0][0] == "GET /search"
    assert con.execute(q, ["GET /items/12345", None, None]).fetchall()[0][0] == "GET /items/{id}"
    assert con.execute(q, ["get /cart/77", None, None]).fetchall()[0][0] == "GET /cart/{id}"  # Zipkin style
    assert con.execute(q, ["getter  of 5", None, None]).fetchall()[0][0] == "getter of ?"
