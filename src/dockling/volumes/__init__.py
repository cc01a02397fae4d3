"""dockling.volumes"""
