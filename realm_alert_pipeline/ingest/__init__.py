"""Ingest: the token, extract and detect steps as time-partitioned assets, their job and schedule."""

from realm_alert_pipeline.ingest.defs import IngestDefs, build_ingest_defs, ingest_partitions_def

__all__ = ["IngestDefs", "build_ingest_defs", "ingest_partitions_def"]
