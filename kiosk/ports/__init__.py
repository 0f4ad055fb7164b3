"""Typed ports (typing.Protocol): what the application layer needs from devices, the platform,
the outbox, the clock and speech."""
