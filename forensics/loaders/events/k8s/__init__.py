"""``kubectl get events -o json`` and ``kubectl get pods -o json``."""
