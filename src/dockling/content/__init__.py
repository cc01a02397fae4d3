"""dockling.content"""
