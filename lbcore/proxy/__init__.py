"""Thin asyncio adapters (HTTP, TCP) around the sans-I/O cores."""
