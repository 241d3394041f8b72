"""What an outbound call is, and which dependency it calls: one definition for every detector,
analysis and figure.

A span is an **outbound call** (:func:`is_call_sql`) when it is work a service asks another
process to do, whatever its kind tag says:

* a client or producer span;
* a database span of any kind: ``db.system`` (or OpenTracing's ``db.type``) or a statement
  (``db.query.text``, ``db.statement``), promoted at load time, or a JDBC statement span known by
  its name only (``HikariProxyPreparedStatement.executeQuery``, ``PreparedStatement.execute``:
  :data:`JDBC_NAME_LIKE`);
* a span without a kind (OpenTracing tracers and Zipkin local spans leave ``span.kind`` out) that
  names a remote peer: ``peer.service``, ``server.address``/``net.peer.name``/``peer.hostname``,
  an RPC service or a messaging destination.

An ``internal`` span is a call only by its database tags or a JDBC name: OpenTelemetry marks work
that stays in the process as internal, and server frameworks put their own host in
``net.host.name`` (promoted to ``server_address``) on spans that are not calls.

Its **target** (:func:`call_target_sql`) is the dependency's name: ``peer.service``; the
service of the server span that answered it; the host of ``url.full``/``http.url``; the host of
``server.address``/``net.peer.name``; the database (``db.namespace``/``db.name``/``db.instance``
with ``db.system``: ``shop (postgresql)``; the database name alone, else ``jdbc`` for a JDBC
statement known by its name, else ``database`` for a statement without a system); the messaging
system; the RPC service; ``unknown`` when nothing names it.
"""
from __future__ import annotations

#: span columns :func:`is_call_sql` reads (the operation keys hash them: see
#: :data:`forensics.semantics.operations.OP_COLUMNS`)
CALL_COLUMNS = ("kind", "name", "db_system", "db_statement", "peer_service", "server_address", "rpc_service",
                "messaging_destination")
#: LIKE pattern of JDBC statement spans named after the driver method (``*Statement.execute*``)
JDBC_NAME_LIKE = "%Statement.execute%"
#: attribute keys naming a database, newest convention first (OpenTracing's ``db.instance`` last)
DB_NAME_KEYS = ("db.namespace", "db.name", "db.instance", "database")


def _db_sql(c: str) -> str:
    return f"({c}.db_system IS NOT NULL OR {c}.db_statement IS NOT NULL OR {c}.name LIKE '{JDBC_NAME_LIKE}')"


def is_call_sql(c: str = "c") -> str:
    """Whether a span aliased ``c`` is an outbound call (see the module rules; reads only
    :data:`CALL_COLUMNS`)."""
    peer = " OR ".join(f"{c}.{col} IS NOT NULL" for col in ("peer_service", "server_address", "rpc_service",
                                                            "messaging_destination"))
    return (f"({c}.kind IN ('client', 'producer') OR ({c}.kind IN ('unspecified', 'internal') AND {_db_sql(c)}) "
            f"OR ({c}.kind = 'unspecified' AND ({peer})))")


def host_sql(expr: str) -> str:
    """The host named by ``expr``: of a URL (``http://user@inventory:8080/x`` → ``inventory``,
    ``jdbc:mysql://db:3306/shop`` → ``db``) or of an address (``db:3306`` → ``db``); NULL for a
    path without a host or an empty value."""
    from_url = f"regexp_extract({expr}, '^[A-Za-z][A-Za-z0-9+.:-]*://(?:[^@/?#]*@)?(\\[[^\\]]*\\]|[^:/?#]*)', 1)"
    bare = f"regexp_replace({expr}, ':[0-9]+$', '')"
    return f"nullif(CASE WHEN strpos({expr}, '://') > 0 THEN {from_url} ELSE {bare} END, '')"


def _database_sql(c: str) -> str:
    name = "coalesce(" + ", ".join(f"nullif({c}.attributes['{k}'], '')" for k in DB_NAME_KEYS) + ")"
    return (f"CASE WHEN nullif({c}.db_system, '') IS NOT NULL THEN "
            f"coalesce({name} || ' (' || {c}.db_system || ')', {c}.db_system) "
            f"WHEN {c}.name LIKE '{JDBC_NAME_LIKE}' THEN coalesce({name}, 'jdbc') "
            f"WHEN {c}.db_statement IS NOT NULL THEN coalesce({name}, 'database') END")


def call_target_sql(c: str = "c", child: str | None = "ch") -> str:
    """The dependency an outbound span aliased ``c`` calls (see the module rules); ``child`` is
    the alias of its child server/consumer span (a ``service`` column), ``None`` without one.

    Later choices are only computed for calls the earlier ones did not name.
    """
    parts = [f"nullif({c}.peer_service, '')"] + ([f"nullif({child}.service, '')"] if child else []) + [
        host_sql(f"{c}.http_url"), host_sql(f"{c}.server_address"), _database_sql(c),
        f"nullif({c}.messaging_system, '')", f"nullif({c}.rpc_service, '')", "'unknown'"]
    return "coalesce(" + ", ".join(parts) + ")"
