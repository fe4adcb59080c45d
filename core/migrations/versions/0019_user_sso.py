"""users sign in through single sign-on: an email and the identity first seen for it

Revision ID: 0019_user_sso
Revises: 0018_user_locale
Create Date: 2026-12-04 20:10:00

`users.email` (unique, lowercase) is what an OpenID Connect sign-in is matched on;
`users.sso_subject` binds it to the provider's issuer and subject at the first sign-in
(core.sso), so an email later given to someone else at the provider does not open the
account.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019_user_sso"
down_revision: str | Sequence[str] | None = "0018_user_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True)
        )
        batch_op.add_column(
            sa.Column("sso_subject", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True)
        )
        batch_op.create_unique_constraint(batch_op.f("uq_users_email"), ["email"])


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_email"), type_="unique")
        batch_op.drop_column("sso_subject")
        batch_op.drop_column("email")
