"""Call media: RTP endpoints for Asterisk externalMedia."""
