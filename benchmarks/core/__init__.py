"""The core every benchmark suite builds on: load client, load shapes, records, stats, reports."""
