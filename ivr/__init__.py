"""Voice IVR: ARI client, media (RTP), speech, call controller."""
