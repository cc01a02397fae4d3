"""dockling.api"""
