"""moto's standalone server, answering one request at a time.

`moto_server` runs a threaded server, and moto's DynamoDB conditional writes
are not atomic across threads: 50 clients racing `SET v = v + 1 IF v = :read`
all "succeed" and the item ends below 50 (measured with moto 5.2.1). Real
DynamoDB serialises conditional writes per item, so the emulator tests run
this single-threaded server to get the semantics the code relies on.

The server binds the port itself (0 = any free port) and prints the one it
holds as its first stdout line, `port N`. A caller that picked a "free" port
and handed it over could race another caller doing the same and end up
talking to someone else's server.

Usage: python3 scripts/moto_serial.py [-H 127.0.0.1] [-p 0]
"""

import argparse
import os
import sys

# Standard output carries one line, the port. Anything else — a library
# printing while it is imported or while the server runs — goes to standard
# error (the caller's log), so it can neither come before that line nor
# write into a pipe the caller has stopped reading.
port_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=0)
args = parser.parse_args()
server = make_server(args.host, args.port, DomainDispatcherApplication(create_backend_app), threaded=False)
port_out.write(f"port {server.socket.getsockname()[1]}\n")
port_out.close()
server.serve_forever()
