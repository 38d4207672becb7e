"""E-mail: templates, campaigns, delivery, tracking, unsubscribe."""
