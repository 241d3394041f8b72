"""Event formats: Kubernetes events and pods (:mod:`.k8s`) and deploy/change logs
(:mod:`.deploy_log`)."""
