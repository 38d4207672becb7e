"""The parts of the merge fields (`messaging.context` is their public face): each module
reads one part for a whole batch of customers with a fixed number of statements."""
