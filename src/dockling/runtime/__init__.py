"""dockling.runtime"""
