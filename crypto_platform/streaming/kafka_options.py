"""Connection options shared by every Kafka client: brokers, authentication and TLS.

Each producer, consumer and admin client (and the Spark source, through `kafka.*` options)
takes these, so pointing the platform at a secured cluster is a matter of settings alone.
"""

from __future__ import annotations

from typing import Any

from crypto_platform.errors import ConfigurationError
from crypto_platform.settings import Settings

__all__ = ["kafka_client_options", "spark_kafka_options"]


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """kafka-python keyword arguments: `bootstrap_servers` plus SASL and TLS when configured."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
        # kafka-python waits 30 s by default: a broker that is down is said sooner.
        "bootstrap_timeout_ms": int(settings.kafka_bootstrap_timeout_s * 1000),
    }
    if protocol.startswith("SASL_"):
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise ConfigurationError(
                f"CRYPTO_KAFKA_SECURITY_PROTOCOL={protocol} needs CRYPTO_KAFKA_SASL_USERNAME "
                "and CRYPTO_KAFKA_SASL_PASSWORD"
            )
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if protocol.endswith("SSL") and settings.kafka_ssl_cafile is not None:
        options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return options


def spark_kafka_options(settings: Settings) -> dict[str, str]:
    """The same options as the Spark source's `kafka.*` options (it maps dots back).

    Spark redacts option values whose key contains "password" from plans and logs.
    """
    return {
        "kafka." + name.replace("_", "."): str(value)
        for name, value in kafka_client_options(settings).items()
    }
