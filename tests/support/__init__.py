"""Test helpers that speak real protocols (SIP user agent)."""
