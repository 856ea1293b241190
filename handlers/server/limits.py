"""What one client may hold of a serving process: connections per address, and time to send a request.

waitress reads every request whole on its event loop before a thread sees it, so slow clients cost
sockets, not threads; but the sockets of a process are finite (`connection_limit`), and its idle
timeout starts again with every byte. One client that opened ~2,000 connections and trickled a
byte into each now and then held every socket of both workers, and nobody else was served
(issue 19, item 6). Two limits close that, on each listening socket's channels:

- a client address may hold at most `per_address` connections in one process; one more is closed
  as soon as it is accepted. Behind a trusted proxy every connection comes from the proxy, so the
  cap is off there and the proxy limits its clients (deploy/nginx.conf, `limit_conn`);
- a request must arrive whole (head and body) within `arrival_seconds` of its first byte; the first
  byte after that closes the connection, and silence closes it after waitress's idle timeout anyway.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

#: Connections one client address may hold open in one serving process (a browser uses a few; a
#: hospital behind one NAT address, a few dozen). Each process counts its own.
CONNECTIONS_PER_ADDRESS = 100
#: Seconds a request may take to arrive whole, from its first byte: a 64 KB body at 2 KB/s fits.
REQUEST_ARRIVAL_SECONDS = 60

log = logging.getLogger("helpdesk.serve")


def channel_gate(per_address: int | None, arrival_seconds: float):
    """A replacement for a waitress server's `channel_class`: called with what an accepted connection
    is made of, it makes a limited channel, or closes the connection when its address holds enough.

    `per_address` None turns the cap off. The counts are shared by every listening socket that uses
    the same gate (one process).
    """
    from waitress.channel import HTTPChannel

    held: Counter = Counter()
    refused: set = set()  # addresses refused since they were last under the cap (one warning each)
    lock = threading.Lock()  # channels are made and closed on the event loop, but be sure

    class LimitedChannel(HTTPChannel):
        arriving_since = 0.0
        counted = False

        def __init__(self, server, sock, addr, adj, map=None):
            super().__init__(server, sock, addr, adj, map=map)
            with lock:
                held[self.addr[0]] += 1
                self.counted = True

        def del_channel(self, map=None):
            super().del_channel(map)
            with lock:
                if self.counted:
                    self.counted = False
                    address = self.addr[0]
                    held[address] -= 1
                    if held[address] <= 0:
                        del held[address]
                    if per_address is not None and held[address] < per_address:
                        refused.discard(address)

        def received(self, data):
            """Read as waitress does, unless the request being read began too long ago."""
            now = time.monotonic()
            if self.request is not None and now - self.arriving_since > arrival_seconds:
                self.will_close = True  # the event loop closes it; no thread ever saw this request
                return False
            pending = self.request
            taken = super().received(data)
            if self.request is not None and self.request is not pending:
                self.arriving_since = now  # a new request began in this chunk
            return taken

    def admit(server, conn, addr, adj, map=None):
        address = addr[0] if isinstance(addr, tuple) else addr
        if per_address is not None:
            with lock:
                full = held[address] >= per_address
                warn = full and address not in refused
                if warn:
                    refused.add(address)
            if full:
                conn.close()
                if warn:
                    log.warning("one client address holds %d connections; more from it are closed until "
                                "it holds fewer", per_address)
                return None
        return LimitedChannel(server, conn, addr, adj, map=map)

    return admit


def limit_channels(channels: dict, per_address: int | None,
                   arrival_seconds: float = REQUEST_ARRIVAL_SECONDS) -> None:
    """Make every listening socket in the waitress map `channels` accept through one `channel_gate`."""
    from waitress.server import BaseWSGIServer

    gate = channel_gate(per_address, arrival_seconds)
    for dispatcher in list(channels.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = gate


def connections_per_address(app) -> int | None:
    """The cap for this app: none behind a trusted proxy, whose address every connection has."""
    return None if app.config.get("TRUSTED_PROXIES") else CONNECTIONS_PER_ADDRESS
