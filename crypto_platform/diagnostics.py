"""Turn a client library's "cannot reach the server" into a sentence a user can act on."""

from __future__ import annotations

import textwrap
from urllib.parse import urlsplit

from cassandra.cluster import NoHostAvailable
from kafka.errors import KafkaError
from pymongo.errors import PyMongoError

from crypto_platform.settings import Settings

FIX = "start the local stack (`crypto-platform stack up`) or set {variable} to where it runs"


def redact_uri(uri: str) -> str:
    """The URI without its password and query (options such as TLS key passwords)."""
    parts = urlsplit(uri)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user = f"{userinfo.split(':', 1)[0]}:***@" if at else ""
    return f"{parts.scheme}://{user}{hosts}{parts.path}"


def explain_unreachable(error: BaseException, settings: Settings) -> str | None:
    """A message naming the server, its address and the fix; None if `error` is not that."""
    if isinstance(error, KafkaError):
        where, variable = settings.kafka_bootstrap_servers, "CRYPTO_KAFKA_BOOTSTRAP_SERVERS"
        name = "Kafka"
    elif isinstance(error, PyMongoError):
        where, variable, name = redact_uri(settings.mongo_uri), "CRYPTO_MONGO_URI", "MongoDB"
    elif isinstance(error, NoHostAvailable):
        hosts = ",".join(settings.cassandra_hosts)
        where, variable = f"{hosts}:{settings.cassandra_port}", "CRYPTO_CASSANDRA_HOSTS/PORT"
        name = "Cassandra"
    else:
        return None
    detail = (
        str(error)
        if str(error).startswith(type(error).__name__)
        else (f"{type(error).__name__}: {error}")
    )
    # Driver messages can run to a whole topology dump: the first words say enough.
    detail = textwrap.shorten(detail, 140, placeholder=" ...")
    return f"{name} at {where} is not reachable ({detail}): " + FIX.format(variable=variable)
