"""dockling.api.routes"""
