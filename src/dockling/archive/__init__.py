"""dockling.archive"""
