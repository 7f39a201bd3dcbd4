"""The placeholder library's second key: the pHash of each placeholder's whole picture (no content box), matched
beside its content-box pHash (preprocessing.perceptual.whole_phash). NULL for rows stored before it: their images are
not kept, so the key cannot be computed for them; such a row is matched by its content-box pHash alone, as before.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE placeholders ADD COLUMN whole_phash bigint  -- the signed integer of the bits, as phash")


def downgrade() -> None:
    op.execute("ALTER TABLE placeholders DROP COLUMN whole_phash")
