"""The local servers that stand in for Kafka, MongoDB and Cassandra on a laptop."""

from crypto_platform.stack.local_stack import LocalStack, ServerStatus

__all__ = ["LocalStack", "ServerStatus"]
