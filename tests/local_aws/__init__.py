"""The project's local AWS: moto in server mode plus the fidelity extensions BYOK tests need.

See docs/local-aws.md. ``server`` runs it, ``control`` manages a background instance (scripts/local-aws),
``harness`` gives tests boto3 clients acting as a given account.
"""
