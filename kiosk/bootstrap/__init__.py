"""The composition root: the one place that names concrete drivers, the outbox, the platform client,
stand-ins and the UI (drivers.py: the driver table; app.py: build_kiosk and its wiring)."""
