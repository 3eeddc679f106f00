"""The embedded MongoDB of the local default: SecantusDB, a MongoDB wire-protocol server, on a free port."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedMongo:
    """Starts SecantusDB in this process with its data under `data_dir`; code only ever sees `uri`."""

    def __init__(self, data_dir: str | Path, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self._server = None

    @property
    def uri(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded MongoDB is not running")
        return self._server.uri

    def start(self) -> EmbeddedMongo:
        try:
            from secantus import SecantusDBServer
        except ImportError as exc:  # the `local` extra is missing
            raise RuntimeError(
                "the embedded MongoDB needs SecantusDB: pip install 'realm-alert-pipeline[local]'"
            ) from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = SecantusDBServer(host="127.0.0.1", port=self.port, storage_path=str(self.data_dir))
        self._server.start()
        log.info("embedded MongoDB listening at %s (data in %s)", self._server.uri, self.data_dir)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
