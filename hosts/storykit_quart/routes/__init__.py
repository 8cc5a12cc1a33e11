"""Blueprints, one per area of the HTTP contract (SPEC §4)."""
