#!/usr/bin/env python3
# net-snmp "pass" script for the tests: serves the OIDs of values.json beside
# it ({"oid": ["type", "value"]}), which the test rewrites between reads.
import json, os, sys
values = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "values.json")))
key = lambda o: tuple(int(x) for x in o.strip(".").split("."))
oids = sorted(values, key=key)
mode, oid = sys.argv[1], sys.argv[2]
if mode == "-g":
    hit = oid if oid in values else None
elif mode == "-n":
    hit = next((o for o in oids if key(o) > key(oid)), None)
else:
    sys.exit(0)
if hit:
    t, v = values[hit]
    print(hit); print(t); print(v)
