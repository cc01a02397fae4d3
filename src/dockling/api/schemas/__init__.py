"""Docker-shaped request and response bodies."""
