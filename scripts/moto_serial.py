"""moto's standalone server, answering one request at a time.

`moto_server` runs a threaded server, and moto's DynamoDB conditional writes
are not atomic across threads: 50 clients racing `SET v = v + 1 IF v = :read`
all "succeed" and the item ends below 50 (measured with moto 5.2.1). Real
DynamoDB serialises conditional writes per item, so the emulator tests run
this single-threaded server to get the semantics the code relies on.

Usage: python3 scripts/moto_serial.py -H 127.0.0.1 -p PORT
"""

import argparse

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, required=True)
args = parser.parse_args()
run_simple(args.host, args.port, DomainDispatcherApplication(create_backend_app), threaded=False)
