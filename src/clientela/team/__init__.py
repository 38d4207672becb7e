"""The shop's team: dashboard users, roles and API keys."""
