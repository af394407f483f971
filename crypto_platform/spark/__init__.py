"""Spark Structured Streaming: the Kafka data source and the aggregation job."""
