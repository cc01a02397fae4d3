"""dockling.snapshots"""
