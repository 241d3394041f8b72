"""realapp: a small multi-service application, traced by the real OpenTelemetry SDK, and the
generator that captures what its incidents leave behind (fixtures for ``tests/data/realapp``).

Not part of the ``forensics`` package: it needs the ``dev`` extra (Flask, SQLAlchemy, the
OpenTelemetry SDK, distro, exporters and instrumentations). See ``realapp/README.md``.
"""
