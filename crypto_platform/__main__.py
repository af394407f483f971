"""`python -m crypto_platform` is the same as the `crypto-platform` command."""

from crypto_platform.cli import main

main()
