"""join the two branches off 0001 (webhook events, users and rate cards) into one head

Revision ID: 0004_merge
Revises: 0002, 0003
Create Date: 2026-12-01 21:10:00

0002 and 0003 were written in parallel on top of 0001; both touch different tables, so
joining them needs no schema change. New migrations chain on this one.
"""
from typing import Sequence, Union

# revision identifiers, used by Alembic.
revision: str = "0004_merge"
down_revision: Union[str, Sequence[str], None] = ("0002", "0003")
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Nothing to change: both parents are applied."""


def downgrade() -> None:
    """Nothing to change: going below this revision splits into the two parents again."""
