"""The bot's HTTP connection to the Bot API, on aiohttp instead of the library's default httpx.

python-telegram-bot lets an application bring its own `BaseRequest`; this one does exactly what the
library's HTTPXRequest does (the same timeouts, the same errors: TimedOut, NetworkError) on aiohttp,
whose HTTP parsing is compiled. httpx, httpcore and anyio are pure Python and cost the event loop
about twice as much per request, and the event loop is what every chat shares (bench/README.md,
"Telegram" has the figures). Parameters are sent as the library sends them (a form; files, which the
bot sends none of today, as multipart).

aiohttp has no write timeout: a request that cannot be written is bounded by the read timeout. A
proxy from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) is used as httpx would use it; it is
looked up once per server, since aiohttp's own `trust_env` reads the environment on every request
(which cost a third of the echo ceiling's speed).
"""
from __future__ import annotations

import asyncio
import urllib.request

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a pool of `connection_pool_size` connections (the library's defaults)."""

    def __init__(self, connection_pool_size: int = 256, read_timeout: float | None = 5.0,
                 connect_timeout: float | None = 5.0, pool_timeout: float | None = 1.0):
        self.pool_size = connection_pool_size
        self.timeouts = {"read": read_timeout, "connect": connect_timeout, "pool": pool_timeout}
        self.session: aiohttp.ClientSession | None = None
        self.proxies: dict[str, str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self.timeouts["read"]

    async def initialize(self) -> None:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size)
            self.session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()

    def _proxy(self, url: str) -> str | None:
        """The environment's proxy for the server of `url` (None: connect directly)."""
        scheme, _, rest = url.partition("://")
        server = rest.split("/", 1)[0]
        if server not in self.proxies:
            host = server.rsplit("@", 1)[-1]
            bypass = urllib.request.proxy_bypass(host.split(":")[0]) if host else True
            self.proxies[server] = None if bypass else urllib.request.getproxies().get(scheme)
        return self.proxies[server]

    def _timeout(self, read_timeout, connect_timeout, pool_timeout) -> aiohttp.ClientTimeout:
        def value(given, name):
            return self.timeouts[name] if isinstance(given, DefaultValue) else given

        connect, pool = value(connect_timeout, "connect"), value(pool_timeout, "pool")
        # aiohttp's `connect` covers waiting for a free connection and opening one.
        both = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(total=None, connect=both, sock_connect=connect,
                                     sock_read=value(read_timeout, "read"))

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self.session is None or self.session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        if request_data is None:
            body = None
        elif request_data.contains_files:
            body = self._multipart(request_data)
        else:
            body = request_data.json_parameters
        try:
            async with self.session.request(method, url, data=body, proxy=self._proxy(url),
                                            timeout=self._timeout(read_timeout, connect_timeout, pool_timeout)
                                            ) as response:
                return response.status, await response.read()
        except asyncio.TimeoutError as err:  # aiohttp's timeouts are asyncio's too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err

    @staticmethod
    def _multipart(request_data: RequestData) -> aiohttp.FormData:
        form = aiohttp.FormData()
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in request_data.multipart_data.items():
            form.add_field(name, content, filename=filename, content_type=mimetype)
        return form
