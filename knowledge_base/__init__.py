"""The knowledge base (知识库): entries with versions, publishing, validity windows and Chinese search."""
