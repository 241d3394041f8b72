"""A case made of hostile strings: a real synth incident whose every text field (spans, logs,
metrics, events, rejects, files; attribute maps too) carries markup that plotly or a browser would
render (links, styled spans, bold, line breaks, images with handlers, scripts) and secrets of
every class the README says ``--redact`` covers."""
from __future__ import annotations

from pathlib import Path

import forensics
from forensics.case import quote_ident

#: markup that must never become an element: a link, a styled span, bold, a line break, an image
#: with a handler, a script (plotly's pseudo-HTML knows the first four)
MARKUP = ('<a href="https://evil.example/x" target="_blank">link</a><span style="color:#123456">styled</span>'
          '<b>bold</b><br><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>')

#: kind -> (text planted in the telemetry, the part that must be gone after --redact)
SECRETS: dict[str, tuple[str, str]] = {
    "aws_access_key": ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    "aws_secret_assignment": ("aws_secret_access_key=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMIK7MDENG"),
    "url_credentials": ("https://admin:hunter2pass@db.internal.example.com/orders", "hunter2pass"),
    "url_empty_user": ("redis://:s3cr3tRedisPw@cache:6379/0", "s3cr3tRedisPw"),
    "bearer": ("Authorization: Bearer abcdefghij0123456789", "abcdefghij0123456789"),
    "bearer_urlencoded": ("?auth=Bearer%20tok3nInUrl12345xyz", "tok3nInUrl12345xyz"),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU", "eyJzdWIiOiJhbGljZSJ9"),
    "jwt_unsigned": ("token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.", "eyJzdWIiOiJib2IifQ"),
    "google_api_key": ("maps AIzaSyA1234567890abcdefghijklmnopqrstuv ok", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    "github_token": ("ghp_0123456789abcdefghijklmnopqrstuvwxyz", "0123456789abcdefghijklmnopqrstuvwxyz"),
    "slack_token": ("xoxb-123456789-987654321-abcdefghijkl", "987654321-abcdefghijkl"),
    "stripe_key": ("sk_live_0123456789abcdefghijklmn", "0123456789abcdefghijklmn"),
    "sendgrid_key": ("SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
    "private_key": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAprivkeybody\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAprivkeybody"),
    "secret_assignment": ("SECRETKEY=topsecretvalue1 next=field", "topsecretvalue1"),
    "password_quoted": ('password: "quoted pass phrase"', "quoted pass phrase"),
    "password_json": ('{"password": "jsonpw123456"}', "jsonpw123456"),
    "api_key": ("api_key=apikeyvalue98765", "apikeyvalue98765"),
    "access_token": ("access_token=at0123456789abc", "at0123456789abc"),
    "session_id": ("session_id=sess9876543210", "sess9876543210"),
    "email": ("contact alice.smith@example.org", "alice.smith@example.org"),
    "ipv4": ("from 203.0.113.9 via 10.20.30.40", "203.0.113.9"),
    "ipv4_private": ("from 10.20.30.40", "10.20.30.40"),
    "ipv6": ("peer 2001:db8::7 port 443", "2001:db8::7"),
    "ipv6_loopback": ("listening on ::1 port 80", "::1 port"),
}
ALL_SECRETS = " | ".join(text for text, _ in SECRETS.values())

#: columns left as they are: ids (joins), vocabularies the loaders normalize, the origin format
KEEP = {"trace_id", "span_id", "parent_span_id", "kind", "status", "format", "type", "temporality",
        "exemplar_trace_id", "exemplar_span_id", "template_id", "target_table", "sha256"}
#: long text fields: every secret at once
LONG_TEXT = {"status_message", "body", "message", "raw", "reason", "description", "db_statement", "http_url"}


def make_hostile_case(workdir: Path, *, traces: int = 150) -> Path:
    """A case file under ``workdir``: the synth N+1 incident, then every text field made hostile."""
    src = workdir / "export"
    forensics.synth.generate("n_plus_one", src, traces=traces, seed=3)
    path = workdir / "hostile.duckdb"
    with forensics.open_case(path) as case:
        forensics.load(case, src, progress=False)
        case.execute("INSERT INTO rejects (source_file, source_line, format, target_table, reason_code, reason, raw) "
                     "VALUES (?, 3, 'json_logs', 'logs', ?, ?, ?)",
                     [MARKUP + "logs.jsonl", "bad_json" + MARKUP, MARKUP + ALL_SECRETS, MARKUP + ALL_SECRETS])
        secrets = list(SECRETS.values())
        i = 0
        for table in ("spans", "logs", "metrics", "events", "rejects", "files"):
            cols = case.sql("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'main' AND table_name = ?", [table]).rows()
            for col, dtype in cols:
                if col in KEEP:
                    continue
                q = quote_ident(col)
                if dtype == "VARCHAR":
                    suffix = ALL_SECRETS if col in LONG_TEXT else secrets[i % len(secrets)][0]
                    # markup around the original value keeps distinct values distinct
                    case.execute(f"UPDATE {quote_ident(table)} SET {q} = ? || {q} || ? WHERE {q} IS NOT NULL",
                                 [MARKUP, " " + suffix])
                    i += 1
                elif dtype.startswith("MAP"):
                    case.execute(f"UPDATE {quote_ident(table)} SET {q} = map_concat({q}, MAP {{?: ?}}) "
                                 f"WHERE {q} IS NOT NULL", [MARKUP + "key", MARKUP + ALL_SECRETS])
    return path
