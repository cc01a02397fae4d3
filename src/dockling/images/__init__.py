"""dockling.images"""
