"""Segment-compatible events: validation, identity resolution and the event store."""
