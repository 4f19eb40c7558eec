"""The text conversation API in front of the Rasa bot (used by the IVR, web chat and evaluation)."""
