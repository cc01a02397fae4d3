"""The embedded DNS server of user-defined networks."""
