"""The HTTP API for the mobile app (assignment, events), metrics reads and health."""
