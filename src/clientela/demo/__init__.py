"""The demo shop: generated (`store`) and loaded through the services (`loading`)."""
