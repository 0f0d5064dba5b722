#!/usr/bin/env bash
# sqlite3 workload: the CLI on an in-memory database; 200k rows inserted, indexed,
# aggregated, joined and updated. sqlite's page cache, statement memory and result
# strings all come from malloc (it also relies on malloc_usable_size).
# Usage: sqlite3.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: sqlite3.sh WORKDIR}
cd "$workdir"
export LC_ALL=C

# No random(): every value is a function of the row number.
cat > work.sql <<'SQL'
.bail on
.headers off
.mode list
.separator |
PRAGMA cache_size = -262144;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, v REAL, blob BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t
SELECT x, (x * 7919) % 10007,
       printf('name-%08d-%s', (x * 104729) % 1000003, hex(x * x)),
       (x % 977) * 1.5,
       zeroblob(x % 200)
FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name);
SELECT 'rows', count(*), sum(k), total(v), sum(length(blob)) FROM t;
SELECT 'top', k, count(*), total(v), min(name), max(name)
  FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 5;
SELECT 'range', count(*), total(v) FROM t WHERE name BETWEEN 'name-00100000' AND 'name-00300000';
CREATE TABLE g AS SELECT k, count(*) AS n, avg(v) AS a, group_concat(id, ',') AS ids
  FROM t GROUP BY k;
SELECT 'groups', count(*), sum(n), total(a), sum(length(ids)) FROM g;
SELECT 'join', count(*), total(t.v * g.a) FROM t JOIN g ON g.k = t.k WHERE t.id % 7 = 0;
SELECT 'window', sum(r), max(r) FROM (
  SELECT rank() OVER (PARTITION BY k % 100 ORDER BY v DESC, id) AS r FROM t WHERE id % 3 = 0);
UPDATE t SET name = name || '-' || (id % 13), v = v * 2 WHERE id % 5 = 0;
DELETE FROM t WHERE id % 11 = 0;
SELECT 'after', count(*), sum(length(name)), total(v) FROM t;
SELECT 'distinct', count(DISTINCT substr(name, 6, 3)) FROM t;
SELECT 'sorted', group_concat(id, ',') FROM (SELECT id FROM t ORDER BY name DESC LIMIT 20);
PRAGMA integrity_check;
SQL
sqlite3 -batch :memory: < work.sql
