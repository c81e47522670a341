"""Dashboards as code (Grafana JSON via grafana-foundation-sdk), publishing, HTML report."""
