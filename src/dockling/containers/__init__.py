"""dockling.containers"""
