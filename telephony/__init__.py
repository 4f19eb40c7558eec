"""The telephony floor under ivr/ and agent_handoff/: the Asterisk ARI client (`telephony.ari`), the call records
(`calls.py`, `models.py`), their API shapes (`schemas.py`) and router (`api.py`, `/v1/calls`). Imports `core` and
`config` only."""
