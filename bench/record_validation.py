"""What validating usage records costs on the collector's ingest path, next to decoding them.

    .venv/bin/python -m bench.record_validation [--batches 200] [--rounds 5]

Bodies of 512 gateway usage records (collector_ingest.py's, encoded by the gateway's exporter)
are decoded by the native decoder, then `RecordValidator.split` (the production limits and
LiteLLM's price table) checks each decoded table. Decode and validation are timed in alternated
rounds on the same tables (process CPU time, so waiting for a busy core is not counted); the
report gives microseconds per record for each, and the share validation adds to decoding.
Also prints the exact path's cost, for a batch holding one bad record.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from bench.collector_ingest import _BATCH, _usage_body, _usage_templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from collector.decode import decode_logs
    from collector.price_rates import PriceRates
    from collector.validation import RecordValidator
    from collector.wire import Encoding
    from meterline.record_limits import RecordLimits

    templates = _usage_templates(4)
    bodies = [_usage_body(templates[b % len(templates)], b) for b in range(args.batches)]
    validator = RecordValidator(RecordLimits(), PriceRates.bundled())
    tables = [table for body in bodies if (table := decode_logs(body, Encoding.PROTOBUF).table) is not None]
    assert all(validator.split(t).bad.num_rows == 0 for t in tables), "bench records must be valid"
    records = args.batches * _BATCH

    decode_us, validate_us = [], []
    for _ in range(args.rounds):
        start = time.process_time()
        for body in bodies:
            decode_logs(body, Encoding.PROTOBUF)
        decode_us.append((time.process_time() - start) / records * 1e6)
        start = time.process_time()
        for table in tables:
            validator.split(table)
        validate_us.append((time.process_time() - start) / records * 1e6)

    import pyarrow as pa
    import pyarrow.compute as pc

    first = tables[0]
    cost = first.column("cost_usd").to_numpy().copy()
    cost[7] = math.nan
    dirty = first.set_column(first.schema.get_field_index("cost_usd"), "cost_usd", pa.array(cost))
    assert pc.is_nan(dirty.column("cost_usd"))[7].as_py()
    start = time.process_time()
    for _ in range(20):
        validator.split(dirty)
    dirty_us = (time.process_time() - start) / 20 / _BATCH * 1e6

    d, v = statistics.median(decode_us), statistics.median(validate_us)
    print(f"native decode      {d:6.2f} us/record  (rounds: {', '.join(f'{x:.2f}' for x in decode_us)})")
    print(f"validation (clean) {v:6.2f} us/record  (rounds: {', '.join(f'{x:.2f}' for x in validate_us)})")
    print(f"validation adds {v / d:.0%} to decoding; a batch with one bad record: {dirty_us:.2f} us/record")


if __name__ == "__main__":
    main()
