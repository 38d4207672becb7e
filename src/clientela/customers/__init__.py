"""Customer profiles: identities, traits, tags, consent, aggregates, merges."""
