"""Studies and their sites (hospital → department → medical group)."""
