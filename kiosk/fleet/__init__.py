"""Fleet operations: signed configuration bundles over MQTT, health telemetry, apply and rollback."""
