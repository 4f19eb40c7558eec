"""The IVR call controller: one explicit state machine per call (session.py), driven by ARI events,
VAD events and the bot's decisions; stages (stages.py) for audio in, understanding and speech out;
wiring in hotline/ivr_runner.py (the top). Entry points: `hotline ivr`, and `hotline run` starts it with
everything else."""

from ivr.controller.controller import IvrController
from ivr.controller.session import CallSession, CallTimeouts, State

__all__ = ["CallSession", "CallTimeouts", "IvrController", "State"]
