"""Stand-ins: the platform simulator, device emulators, simulated drivers and the UI driver.

Imported only by the composition root (when asked to simulate), the CLI commands
that run them, and tests. No runtime module imports this package.
"""
