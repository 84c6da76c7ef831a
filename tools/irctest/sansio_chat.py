"""irctest controller for sansio-chat's `chat-server` (or `chat-server-std`):
a fresh server per test, named and with an operator as irctest expects."""

import os
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController


class SansioChatController(BaseServerController, DirectoryBasedController):
    software_name = "sansio-chat"
    supported_sasl_mechanisms: Set[str] = set()
    supports_sts = False

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if password is not None:
            raise NotImplementedByController("PASS (the contract has no server password)")
        if ssl:
            raise NotImplementedByController("TLS on the IRC port")
        if run_services:
            raise NotImplementedByController("services")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        (native_host, native_port) = self.get_hostname_and_port()
        self.proc = self.execute(
            [
                os.environ.get("SANSIO_CHAT_SERVER", "chat-server"),
                "--listen",
                f"{native_host}:{native_port}",
                "--irc-listen",
                f"{hostname}:{port}",
                "--server-name",
                "My.Little.Server",
                "--oper",
                "operuser:operpassword",
            ]
        )


def get_irctest_controller_class() -> Type[SansioChatController]:
    return SansioChatController
