"""Custom Rasa actions (rasa-sdk), served from `.venv-actions` on port 5055 by `hotline.services.actions`.

They call the knowledge-base and work-order services in-process (same database as the hotline) and attach
their decision to the reply as `{"hotline": {...}}` JSON, which `dialogue/service.py` turns into the
`/v1/dialogue` response (action, kb_entry_id, work_order, handoff).
"""
