"""Small helpers every layer may use: atomic file writes (``io``), lazy package exports (``lazy``).

A base package: it may import only the standard library and ``errors``, never another cnnlab layer.
"""
