"""`crypto-platform bench`: throughput and latency of ours beside bare clients, same run."""
