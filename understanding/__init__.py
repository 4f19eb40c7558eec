"""Language understanding for Mandarin callers, before and beside the Rasa bot.

Text in, meaning out; no HTTP, no database, no speech engine. Used by the dialogue service (every
turn) and the IVR (what the recogniser should listen for):

* :mod:`understanding.expect`    what kind of answer the bot's last question expects
* :mod:`understanding.gazetteer` the city's districts, streets, roads and landmarks
"""
