"""dockling.cli"""
