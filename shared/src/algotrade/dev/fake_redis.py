"""fakeredis's TCP server, for machines with neither ``REDIS_URL`` nor ``redis-server``."""

from __future__ import annotations

import sys


def main() -> None:
    from fakeredis import TcpFakeServer

    port = int(sys.argv[1])
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    print(f"REDIS_URL=redis://127.0.0.1:{port}/0", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
