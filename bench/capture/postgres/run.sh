#!/usr/bin/env bash
# The capture cost on PostgreSQL, by pgbench: writers into `power_plants` (journal triggers on) against
# `plain`, a copy with the same columns, defaults, checks, indexes and server-owned-fields trigger but
# no journal, in one fresh database, alternating the two tables round by round so that both share
# whatever else the machine is doing. Prints commits/s (or seconds) per table and their ratio.
#
# Usage: bench/capture/postgres/run.sh [SECONDS_PER_RUN] [ROUNDS] [UP_TO_MIGRATION]
# Environment: PGHOST (127.0.0.1), PGUSER (root). UP_TO_MIGRATION (e.g. 0011) measures an older capture.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
migrations="$here/../../../migrations/postgres"
seconds="${1:-5}"
rounds="${2:-2}"
upto="${3:-9999}"
export PGHOST="${PGHOST:-127.0.0.1}" PGUSER="${PGUSER:-root}"
db="capture_bench_$$"
psql -qAt -d postgres -c "CREATE DATABASE $db"
trap 'psql -qAt -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for file in "$migrations"/*.sql; do
    [ "$(basename "$file" | cut -c1-4)" \> "$upto" ] && continue
    psql -qAt -v ON_ERROR_STOP=1 -d "$db" -f "$file" >/dev/null
done
psql -qAt -v ON_ERROR_STOP=1 -d "$db" -c "CREATE TABLE plain (LIKE power_plants INCLUDING ALL)" \
    -c "CREATE TRIGGER plain_own_fields BEFORE INSERT OR UPDATE ON plain
        FOR EACH ROW EXECUTE FUNCTION power_plants_own_fields()"
for table in power_plants plain; do
    psql -qAt -d "$db" -c "INSERT INTO $table (name, region, fuel, capacity_mw)
                           SELECT 'seed', 'r1', 'wind', 1 FROM generate_series(1, 1000)"
done

rate() { # table clients script
    pgbench -n -d "$db" -c "$2" -j "$(( $2 < 2 ? $2 : 2 ))" -T "$seconds" -D tbl="$1" -f "$here/$3" 2>&1 |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
bulk() { # table: seconds for one 20k-row INSERT
    psql -qAt -d "$db" -c "\\timing on" -c "INSERT INTO $1 (name, region, fuel, capacity_mw, output_mw)
        SELECT 'bulk', 'r' || (i % 8), 'hydro', i, i / 2.0 FROM generate_series(1, 20000) i" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
printf '| scenario | round | power_plants | plain | ratio |\n| --- | --- | --- | --- | --- |\n'
for round in $(seq "$rounds"); do
    for scenario in "insert_1.sql 1" "insert_1.sql 8" "update_1.sql 1" "update_1.sql 8" "insert_10.sql 1" "insert_10.sql 8"; do
        set -- $scenario
        captured=$(rate power_plants "$2" "$1")
        plain=$(rate plain "$2" "$1")
        printf '| %s, %s writers, commits/s | %s | %s | %s | %.2f |\n' "${1%.sql}" "$2" "$round" "$captured" "$plain" \
            "$(echo "$captured / $plain" | bc -l)"
    done
    captured=$(bulk power_plants)
    plain=$(bulk plain)
    printf '| one 20k-row INSERT, ms | %s | %s | %s | %.2f |\n' "$round" "$captured" "$plain" \
        "$(echo "$captured / $plain" | bc -l)"
done
