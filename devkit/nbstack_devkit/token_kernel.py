"""The README's route for nbclient with the API token ("Scripts and editors"), for the tests that take it.

jupyter_server's GatewayKernelClient opens the kernel websocket with no
header, so a server that needs the token refuses it (403); this client
sends the gateway's Authorization header on the websocket too, as its HTTP
requests do. The README shows the same class for people to copy.
"""

from __future__ import annotations

from threading import Thread
from typing import Any

import websocket
from jupyter_core.utils import ensure_async
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelClient
from jupyter_server.utils import url_escape, url_path_join


class TokenGatewayKernelClient(GatewayKernelClient):
    """GatewayKernelClient whose kernel websocket sends the gateway's Authorization header, as its HTTP requests do."""

    async def start_channels(self, **channels: Any) -> None:  # type: ignore[override]
        gateway = GatewayClient.instance()
        url = url_path_join(gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id), "channels")
        self.channel_socket = websocket.create_connection(
            url,
            timeout=gateway.KERNEL_LAUNCH_TIMEOUT,
            enable_multithread=True,
            header=[f"{gateway.auth_header_key}: {gateway.auth_scheme} {gateway.auth_token}"],
        )
        await ensure_async(super(GatewayKernelClient, self).start_channels(**channels))
        self.response_router = Thread(target=self._route_responses)
        self.response_router.start()
