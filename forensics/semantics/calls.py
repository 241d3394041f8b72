"""What an outbound call is, and which dependency it calls: one definition for every detector,
analysis and figure.

A span is an **outbound call** when it is a client or producer span, or a database span of any
kind (``db.system``/``db.statement`` promoted at load time): work a service asks another
process to do. Its **target** is the dependency's name (:func:`call_target_sql`).
"""
from __future__ import annotations

#: span columns :func:`is_call_sql` reads
CALL_COLUMNS = ("kind", "db_system", "db_statement")


def is_call_sql(c: str = "c") -> str:
    """Whether a span aliased ``c`` is an outbound call (client/producer kind, or a DB span)."""
    return f"({c}.kind IN ('client', 'producer') OR {c}.db_system IS NOT NULL OR {c}.db_statement IS NOT NULL)"


def call_target_sql(c: str = "c", child: str | None = "ch") -> str:
    """The dependency an outbound span aliased ``c`` calls.

    ``peer_service``, else the service of its child server/consumer span (alias ``child``),
    else ``server_address``, else ``db_system``, else ``messaging_system``, else ``'unknown'``.
    """
    parts = [f"{c}.peer_service"] + ([f"{child}.service"] if child else []) + [
        f"{c}.server_address", f"{c}.db_system", f"{c}.messaging_system", "'unknown'"]
    return "coalesce(" + ", ".join(f"nullif({p}, '')" if p != "'unknown'" else p for p in parts) + ")"
