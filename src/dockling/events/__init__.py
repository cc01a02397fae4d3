"""dockling.events"""
