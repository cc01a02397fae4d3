"""dockling.client"""
