"""dockling.testing"""
