"""critic versions name their critic-store version in the store's neutral terms

``critic_versions.mlflow_version`` becomes ``store_version``: the daemon speaks to its
critic store through a port that MLflow implements, and the state no longer names it.
``run_id`` goes: the store finds a version's run itself. A downgrade brings the column back
empty (MLflow still holds each version's run).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("critic_versions", schema=None) as batch_op:
        batch_op.alter_column("mlflow_version", new_column_name="store_version")
        batch_op.drop_column("run_id")


def downgrade() -> None:
    with op.batch_alter_table("critic_versions", schema=None) as batch_op:
        batch_op.alter_column("store_version", new_column_name="mlflow_version")
        batch_op.add_column(sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
