"""Automated scenarios: triggers, steps, enrolments."""
