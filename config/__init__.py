"""Settings and service configuration (Asterisk, Rasa, synonyms) for the hotline."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
