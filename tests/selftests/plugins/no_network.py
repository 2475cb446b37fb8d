"""Refuse every network connection and name resolution for the whole run, and log each attempt.

Installed when the plugin is imported (``-p``), before the suite imports transformers or
huggingface_hub. Attempts are appended to the file named by $NO_NETWORK_LOG, so a library
that catches the error and carries on is still caught by the test.
"""

import os
import socket


def _refuse(what):
    def refuse(*args, **kwargs):
        with open(os.environ["NO_NETWORK_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{what} {args[1:] if what == 'connect' else args}\n")
        raise OSError(f"network access attempted during an acceptance run: {what}")

    return refuse


socket.socket.connect = _refuse("connect")
socket.socket.connect_ex = _refuse("connect")
socket.create_connection = _refuse("create_connection")
socket.getaddrinfo = _refuse("getaddrinfo")
