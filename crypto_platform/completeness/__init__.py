"""Every hour complete: gaps found, backfilled from the sources, recomputed from MongoDB."""
