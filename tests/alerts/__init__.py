"""Tests of the alert outlets: wire formats, fakes, rules and the outlet actors."""
