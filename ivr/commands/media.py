"""``ivr media-server``: the Twilio Media Streams endpoint (real-time speech answers)."""
from __future__ import annotations

import logging

import click


def register(cli):
    """Add the ``media-server`` command to the ``ivr`` command."""

    @cli.command("media-server")
    @click.option("--host", default=None, help="Interface to listen on (default IVR_MEDIA_HOST).")
    @click.option("--port", default=None, type=int, help="Port (default IVR_MEDIA_PORT).")
    def media_server(host, port):
        """Serve wss://…/voice/stream: recognise callers' answers while they speak."""
        from ivr.ops import logs
        from ivr.config import ConfigError, load_config
        from ivr.voice.media_server import (MediaServer, load_handlers, max_streams_from_config, preload_from_config,
                                      settings_from_config)

        try:
            config = load_config()
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        try:
            settings = settings_from_config(config)
            handlers = load_handlers(config.media_handlers, config)
            max_streams = max_streams_from_config(config)
            server = MediaServer(handlers, auth_token=config.twilio_auth_token,
                                 validate_signatures=config.validate_signatures, public_url=config.public_url,
                                 media_url=config.media_url, settings=settings, models_dir=config.models_dir,
                                 max_streams=max_streams, shed_after_ms=config.media_shed_after_ms,
                                 preload=preload_from_config(config))
        except (ValueError, TypeError, ImportError, AttributeError) as exc:
            raise click.ClickException(str(exc)) from exc
        # Escaped lines (text, or JSON with IVR_LOG_FORMAT=json): handshakes come from anyone.
        logs.configure(config.log_format or "text", level=logging.INFO)
        host = host or config.media_host
        port = config.media_port if port is None else port
        limit = f"at most {max_streams} streams" if max_streams else "no stream limit"
        shed = (f"shedding streams {config.media_shed_after_ms} ms behind" if config.media_shed_after_ms
                else "no shedding")
        loading = (f"ready once speech model(s) {', '.join(server.preload)} are loaded" if server.preload
                   else "no speech model to load")
        click.echo(f"media endpoint on ws://{host}:{port}/voice/stream, {limit}, {shed}, {loading}; "
                   f"health on http://{host}:{port}/healthz (Ctrl+C to stop)")
        server.run(host, port)
