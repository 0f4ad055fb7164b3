"""The fleet console: storage and ingest of what the kiosks report, commands, staged rollouts, the JSON API.

A sibling of the composition root (kiosk.bootstrap): it may use the fleet code below it
(to verify uploaded bundles and commands as a kiosk would) and never holds a private key.
The web pages (kiosk/console/web/) are a thin layer over these services.
"""
