"""Segments: a rule language over profiles, events, orders and predictions, compiled to SQL."""
