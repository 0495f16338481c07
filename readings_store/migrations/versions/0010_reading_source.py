"""readings.given_from and readings.trusted: who gave a value, for the intake policy's baseline

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('readings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('given_from', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('trusted', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Readings stored before: the number of the call, or of the text (its key is "sms:<MessageSid>:…",
    # a SID being 34 characters), and trusted when given by a trusted channel, vouched for by an
    # operator, or from a number on file for the meter's account.
    op.execute("UPDATE readings SET given_from = (SELECT calls.from_number FROM calls WHERE calls.id = readings.call_id) "
               "WHERE channel IN ('phone_keypad', 'phone_speech')")
    op.execute("UPDATE readings SET given_from = (SELECT sms_messages.from_number FROM sms_messages "
               "WHERE sms_messages.message_sid = substr(readings.idempotency_key, 5, 34)) "
               "WHERE channel = 'sms' AND readings.idempotency_key LIKE 'sms:%'")
    op.get_bind().execute(sa.text(
        "UPDATE readings SET trusted = :yes WHERE channel IN ('operator', 'api', 'import') "
        "OR operator_id IS NOT NULL OR EXISTS (SELECT 1 FROM meters JOIN account_phones "
        "ON account_phones.account_id = meters.account_id "
        "WHERE meters.id = readings.meter_id AND account_phones.phone = readings.given_from)"), {"yes": True})


def downgrade() -> None:
    with op.batch_alter_table('readings', schema=None) as batch_op:
        batch_op.drop_column('trusted')
        batch_op.drop_column('given_from')
