"""The composition root: the one place that names concrete drivers, the outbox, the platform client, stand-ins and the UI."""
