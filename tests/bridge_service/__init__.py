"""Tests of the gateway bridge service against the real simulator and a fake cloud."""
