"""Sender numbers: each tenant's WhatsApp business numbers, their encrypted tokens, health.

`core.numbers.registry` is the read API the sender and the webhook app use (which
number a tenant sends from, whose number an event names); `core.numbers.admin` adds,
changes and removes numbers; `core.numbers.secrets` encrypts tokens at rest.
"""
