#!/usr/bin/env bash
# python3 workload: dicts, JSON dump/load, big lists and string building, with every
# object allocation going through malloc (PYTHONMALLOC=malloc), so an interposed
# allocator sees all of it. A few hundred MB of churn, ~200 MB live at the peak.
# Usage: python3.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: python3.sh WORKDIR}
cd "$workdir"
export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 LC_ALL=C
unset PYTHONSTARTUP PYTHONPATH PYTHONHOME

cat > work.py <<'PY'
import hashlib
import json
import random

rng = random.Random(20240601)
digest = hashlib.sha256()


def report(name, *values):
    line = name + " " + " ".join(str(v) for v in values)
    digest.update(line.encode())
    print(line)


# 1. Dicts: build, update, delete half, rebuild; string keys of mixed lengths.
d = {}
for i in range(220_000):
    d["key-%d-%s" % (i, "x" * (i % 37))] = [i, i * i, str(i)]
for i in range(0, 220_000, 2):
    del d["key-%d-%s" % (i, "x" * (i % 37))]
for i in range(220_000, 330_000):
    d["key-%d" % i] = {"n": i, "s": "v" * (i % 91)}
total = 0
for k, v in d.items():
    total += v[0] if isinstance(v, list) else v["n"]
report("dict", len(d), total)
del d

# 2. JSON: a nested document of ~8 MB, dumped, loaded back, compared, dumped again.
doc = {
    "users": [
        {
            "id": i,
            "name": "user%06d" % i,
            "tags": ["t%d" % (j * i % 101) for j in range(i % 9)],
            "score": round(rng.random() * 1000, 3),
            "friends": [rng.randrange(100_000) for _ in range(i % 13)],
            "bio": "lorem ipsum " * (i % 17),
        }
        for i in range(30_000)
    ]
}
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
assert back == doc
text2 = json.dumps(back, indent=1, sort_keys=True)
report("json", len(text), len(text2), hashlib.sha256(text2.encode()).hexdigest()[:16])
with open("doc.json", "w") as f:
    f.write(text)
with open("doc.json") as f:
    again = json.load(f)
report("json-file", len(again["users"]), sum(u["id"] for u in again["users"]))
del doc, back, text, text2, again

# 3. Big lists: 500k tuples live at once (the peak), sorted, filtered, rebuilt.
rows = [(rng.randrange(1_000_000), "r%d" % i, i) for i in range(500_000)]
rows.sort()
evens = [r for r in rows if r[0] % 2 == 0]
pairs = list(zip(rows[::3], rows[1::3]))
report("list", len(rows), len(evens), len(pairs), rows[0], rows[-1])
del rows, evens, pairs

# 4. String building: join, replace, split, format; bytes and bytearray growth.
parts = []
for i in range(220_000):
    parts.append("%08x:%s;" % (i * 2654435761 % 2**32, "ab" * (i % 11)))
s = "".join(parts)
s2 = s.replace("ab", "xyz").upper()
fields = s2.split(";")
ba = bytearray()
for f in fields[:200_000]:
    ba += f.encode()
    if len(ba) > 1_000_000:
        digest.update(bytes(ba))
        ba = bytearray()
report("string", len(s), len(s2), len(fields), hashlib.sha256(s2.encode()).hexdigest()[:16])

# 5. Many small objects with cycles, freed by the collector.
class Node:
    __slots__ = ("next", "payload")

nodes = []
for i in range(220_000):
    n = Node()
    n.payload = ("p%d" % i, i)
    nodes.append(n)
for i, n in enumerate(nodes):
    n.next = nodes[(i * 7 + 1) % len(nodes)]
report("graph", len(nodes), sum(n.next.payload[1] for n in nodes[:1000]))
del nodes

print("digest", digest.hexdigest())
PY
"${PYTHON:-python3}" work.py
