"""dockling.daemon"""
