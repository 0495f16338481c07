"""Speech: Vosk model pool, grammar-constrained recognition, audio decoding, confidence policy.

``speech.confidence`` is pure (no Vosk import) so the dialog engine can use it; import the
other modules explicitly (``from speech.recognizer import recognize``) to load Vosk.
"""
