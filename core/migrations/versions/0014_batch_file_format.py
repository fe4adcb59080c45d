"""a batch's upload format (columns, CSV dialect) kept on the batch, not as row 0

Revision ID: 0014_batch_file_format
Revises: 0013_webhook_rejections
Create Date: 2026-12-04 17:00:00

Until now a CSV batch kept how its upload was written as a fake "header record" in
send_batch_rows (row_number 0, the format in `raw`, no message and no error), which every
count and listing of rows had to skip. The upgrade moves each such record into the new
send_batches.upload_format column and deletes it; the downgrade writes it back as row 0.
Both are plain SQL (a JSON value copied between two JSON columns of the same type), so
nothing is read into Python and it works alike on SQLite and PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_batch_file_format"
down_revision: str | Sequence[str] | None = "0013_webhook_rejections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The fixed row number the old header records used (core.batches.HEADER_ROW, now gone).
_HEADER_ROW = 0
#: A header record is row 0 of its batch with neither a message nor a refusal: an input
#: row always has one of them, so a data row numbered 0 (from an old API call) stays.


def upgrade() -> None:
    with op.batch_alter_table("send_batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "upload_format",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
    header_row = {"header_row": _HEADER_ROW}
    op.execute(
        sa.text(
            "UPDATE send_batches SET upload_format = (SELECT r.raw FROM send_batch_rows r"
            " WHERE r.batch_id = send_batches.id AND r.row_number = :header_row"
            " AND r.message_id IS NULL AND r.error IS NULL)"
            " WHERE EXISTS (SELECT 1 FROM send_batch_rows r"
            " WHERE r.batch_id = send_batches.id AND r.row_number = :header_row"
            " AND r.message_id IS NULL AND r.error IS NULL)"
        ).bindparams(**header_row)
    )
    op.execute(
        sa.text(
            "DELETE FROM send_batch_rows WHERE row_number = :header_row"
            " AND message_id IS NULL AND error IS NULL"
        ).bindparams(**header_row)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO send_batch_rows (batch_id, row_number, raw)"
            " SELECT id, :header_row, upload_format FROM send_batches"
            # JSON's own null (what the ORM may write for None) is no format either
            " WHERE upload_format IS NOT NULL AND CAST(upload_format AS TEXT) <> 'null'"
            " AND NOT EXISTS (SELECT 1 FROM send_batch_rows r"
            " WHERE r.batch_id = send_batches.id AND r.row_number = :header_row)"
        ).bindparams(header_row=_HEADER_ROW)
    )
    # A plain DROP COLUMN (SQLite >= 3.35, as 0008 does): batch mode would recreate
    # send_batches, and dropping the old copy fails SQLite's foreign key check on the
    # rows and messages that point at it.
    op.execute("ALTER TABLE send_batches DROP COLUMN upload_format")
