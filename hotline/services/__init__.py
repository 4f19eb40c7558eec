"""Local services the hotline runs in development (Asterisk, ...)."""
