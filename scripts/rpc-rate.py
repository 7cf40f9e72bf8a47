#!/usr/bin/env python3
"""Requests per second of `secure-ehr serve --rpc`, one client over one keep-alive connection:
eth_call of canAccess(reader, record), and eth_getLogs of one record's AccessLogged events
(the (event, record) index). Standard library only.

    scripts/rpc-rate.py URL CONTRACT READER RECORD [N] [TOKEN]
    scripts/rpc-rate.py http://127.0.0.1:9999/rpc 0xCONTRACT 0xREADER 1 2000
"""
import http.client, json, sys, time
from urllib.parse import urlparse

url, contract, reader, record = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
headers = {"content-type": "application/json"}
if len(sys.argv) > 6:
    headers["authorization"] = f"Bearer {sys.argv[6]}"
u = urlparse(url)
conn = (http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection)(u.hostname, u.port)


def rpc(method, params):
    conn.request("POST", u.path or "/rpc", json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}), headers)
    reply = json.loads(conn.getresponse().read())
    if "result" not in reply:
        sys.exit(f"{method}: {reply}")
    return reply["result"]


can_access = "0xc61fffec"  # canAccess(address,uint256)
access_logged = "0xccb5c26c7db90964e9c76e4d75baf17a81c4c11f1563d948c57be3c3733be383"
record_topic = "0x" + format(record, "064x")
call = [{"to": contract, "data": can_access + reader[2:].lower().rjust(64, "0") + record_topic[2:]}, "latest"]
logs = [{"fromBlock": "earliest", "toBlock": "latest", "address": contract, "topics": [access_logged, record_topic]}]
found = len(rpc("eth_getLogs", logs))
head = int(rpc("eth_blockNumber", []), 16)
for name, method, params in [("eth_call canAccess", "eth_call", call), (f"eth_getLogs of one record ({found} logs)", "eth_getLogs", logs)]:
    start = time.perf_counter()
    for _ in range(n):
        rpc(method, params)
    took = time.perf_counter() - start
    print(f"{name}: {n / took:.0f}/s, {took / n * 1e3:.2f} ms each (head block {head})")
