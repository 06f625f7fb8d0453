"""The account tests' study fixtures (a draft study on model entries without files, its
owner logged in), for the annotators page tests."""

from tests.accounts.conftest import _fast_passwords_and_fresh_throttle, lab  # noqa: F401
