"""Fake upstream vendors: real HTTP servers on loopback that follow each vendor's protocol."""
