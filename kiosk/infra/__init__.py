"""Plumbing shared by the adapters and the app: JSON logs, speech backends, systemd notify."""
