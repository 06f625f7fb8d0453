"""Shared fixtures. Django-specific fixtures live beside the tests that need them."""
