"""The Twilio voice edge: webhooks and TwiML, recording fetch and recognition, the stream line and
the media server. Imports nothing itself, so that the media server process (``ivr media-server``)
loads only what it uses and no Flask."""
