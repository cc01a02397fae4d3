"""dockling.diff: compare a snapshot's upper dir with its lowers (commit, docker diff)."""
