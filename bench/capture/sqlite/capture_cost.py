#!/usr/bin/env python3
"""The capture cost on SQLite: writers' commit rates into `power_plants` (journal triggers on) and into
`plain_plants`, the same table without them, measured in one run on one database file.

`plain_plants` is made from the schema the migrations leave: the same columns, defaults, CHECKs and
indexes, and the table's own guards (string attributes, immutable id), without the journal triggers.
The database is opened as the store opens it: WAL, synchronous FULL, a 10 s busy timeout. Rounds
alternate the two tables so both grow alike and the machine's drift falls on both.

    python3 bench/capture/sqlite/capture_cost.py [--migrations DIR] [--rounds N] [--quick] [--ids v4|v7]

Ids are random (v4, as the table's default gives raw SQL writers) or time-ordered (v7, as the API
gives them); random ids scatter every write of an id-keyed index, ordered ones append.
"""

import argparse
import multiprocessing as mp
import os
import re
import sqlite3
import statistics
import tempfile
import time
import uuid

GUARDS = ("power_plants_attributes_insert", "power_plants_attributes_update", "power_plants_id_immutable")
COLUMNS = "id, name, region, fuel, capacity_mw, output_mw, status, latitude, longitude, attributes"
# The least a trigger can write per row: the plant's own fields into a table with no index, no
# AUTOINCREMENT and no trace. What the journal costs beyond this is its indexes, its never-reused seq
# and its trace.
FLOOR = """
CREATE TABLE floor_journal (plant_id TEXT, region TEXT, kind TEXT, name TEXT, fuel TEXT, capacity_mw REAL,
                            output_mw REAL, status TEXT, latitude REAL, longitude REAL, attributes TEXT);
CREATE TRIGGER floor_plants_journal AFTER INSERT ON floor_plants
BEGIN
    INSERT INTO floor_journal VALUES (NEW.id, NEW.region, 'created', NEW.name, NEW.fuel, NEW.capacity_mw,
                                      NEW.output_mw, NEW.status, NEW.latitude, NEW.longitude, NEW.attributes);
END;
"""
REGIONS = ("us-west", "us-east", "eu-north", "ap-south")
FUELS = ("solar", "wind", "hydro", "gas", "nuclear")


def connect(path):
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrate(path, folder):
    conn = connect(path)
    for name in sorted(os.listdir(folder)):
        if name.endswith(".sql"):
            with open(os.path.join(folder, name)) as file:
                conn.executescript(file.read())
    schema = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
    plain = [schema["power_plants"], schema["power_plants_by_region"]] + [schema[g] for g in GUARDS]
    for table in ("plain_plants", "floor_plants"):
        for sql in plain:
            conn.execute(sql.replace("power_plants", table))
    conn.executescript(FLOOR)
    conn.close()


def new_id(kind):
    if kind == "v4":
        return str(uuid.uuid4())
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | (0x7 << 76) | (uuid.uuid4().int & ((1 << 76) - 1))
    return str(uuid.UUID(int=(value & ~(0b11 << 62)) | (0b10 << 62)))


def row(i, ids):
    return (
        new_id(ids),
        f"Plant {i}",
        REGIONS[i % len(REGIONS)],
        FUELS[i % len(FUELS)],
        100.0 + i * 0.1,
        None if i % 3 == 0 else 50.25 + i,
        "operational",
        45.0 + (i % 90) / 7.0,
        -120.0 + (i % 180) / 3.0,
        '{"operator":"bench","site":"s%d"}' % (i % 100),
    )


def insert_sql(table):
    return f"INSERT INTO {table} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def write(path, table, transactions, rows_per, start, barrier, ids):
    """Commits `transactions` transactions of `rows_per` rows each, one statement per row."""
    conn = connect(path)
    sql = insert_sql(table)
    rows = [row(start + i, ids) for i in range(transactions * rows_per)]
    if barrier is not None:
        barrier.wait()
    for t in range(transactions):
        conn.execute("BEGIN")
        for r in rows[t * rows_per:(t + 1) * rows_per]:
            conn.execute(sql, r)
        conn.execute("COMMIT")
    conn.close()


def concurrent(path, table, writers, transactions, rows_per, start, ids):
    """Rows committed per second by `writers` processes, each committing `transactions` transactions."""
    if writers == 1:
        began = time.perf_counter()
        write(path, table, transactions, rows_per, start, None, ids)
        return transactions * rows_per / (time.perf_counter() - began)
    barrier = mp.Barrier(writers + 1)
    procs = [
        mp.Process(target=write, args=(path, table, transactions, rows_per,
                                       start + w * transactions * rows_per, barrier, ids))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    began = time.perf_counter()
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"a writer failed: {p.exitcode}"
    return writers * transactions * rows_per / (time.perf_counter() - began)


def bulk(path, table, rows, start, ids):
    """Seconds one transaction takes to insert `rows` rows, commit included."""
    conn = connect(path)
    data = [row(start + i, ids) for i in range(rows)]
    began = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(insert_sql(table), data)
    conn.execute("COMMIT")
    took = time.perf_counter() - began
    conn.close()
    return took


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--migrations", default=os.path.join(here, "../../../migrations/sqlite"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer commits per scenario")
    parser.add_argument("--ids", choices=("v4", "v7"), default="v4")
    parser.add_argument("--dir", default=None, help="where the database file goes (default: a temp dir)")
    args = parser.parse_args()
    scale = 1 if args.quick else 4
    scenarios = [
        # name, writers, transactions per writer, rows per transaction
        ("1 writer, 1-row commits", 1, 250 * scale, 1),
        ("8 writers, 1-row commits", 8, 60 * scale, 1),
        ("1 writer, 10-row commits", 1, 50 * scale, 10),
        ("8 writers, 10-row commits", 8, 12 * scale, 10),
    ]
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = os.path.join(folder, "capture.db")
        migrate(path, args.migrations)
        print(f"sqlite {sqlite3.sqlite_version}, {args.rounds} rounds, {args.ids} ids, {path}")
        start = 0
        results = {}
        for round in range(args.rounds):
            # Each round swaps which table goes first, so neither always meets the other's checkpoint.
            tables = ("plain_plants", "power_plants")[:: 1 if round % 2 == 0 else -1]
            for name, writers, transactions, rows_per in scenarios:
                for table in tables:
                    rate = concurrent(path, table, writers, transactions, rows_per, start, args.ids)
                    start += writers * transactions * rows_per
                    results.setdefault(name, {}).setdefault(table, []).append(rate)
            for table in tables + ("floor_plants",):
                took = bulk(path, table, 20_000, start, args.ids)
                start += 20_000
                results.setdefault("one 20k-row transaction", {}).setdefault(table, []).append(took)
        conn = connect(path)
        journaled = conn.execute("SELECT count(*) FROM plant_changes").fetchone()[0]
        captured = conn.execute("SELECT count(*) FROM power_plants").fetchone()[0]
        conn.close()
        assert journaled == captured, f"{captured} plants but {journaled} journal entries"
    print(f"{'scenario':32} {'capture off':>14} {'capture on':>14} {'ratio (median of rounds)':>26}")
    for name, by_table in results.items():
        off, on = by_table["plain_plants"], by_table["power_plants"]
        ratios = [b / a for a, b in zip(off, on)]
        if name.startswith("one"):
            unit, goal, fmt = "s", "time on/off, goal <= 1.5", "{:.3f}"
        else:
            unit, goal, fmt = "rows/s", "rate on/off, goal >= 0.80", "{:.0f}"
        print(f"{name:32} {fmt.format(statistics.median(off)):>10} {unit:<3} "
              f"{fmt.format(statistics.median(on)):>10} {unit:<3} "
              f"{statistics.median(ratios):>8.2f} ({goal}; rounds {', '.join(f'{r:.2f}' for r in ratios)})")
        if "floor_plants" in by_table:
            floor = [b / a for a, b in zip(off, by_table["floor_plants"])]
            print(f"{'  floor: a bare row per change':32} {'':14} {statistics.median(by_table['floor_plants']):>10.3f} s   "
                  f"{statistics.median(floor):>8.2f} (rounds {', '.join(f'{r:.2f}' for r in floor)})")


if __name__ == "__main__":
    main()
