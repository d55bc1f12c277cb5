"""Text messages to citizens' mobiles, behind the `SmsGateway` protocol.

Only the development outbox ships: a real gateway (an operator's or an aggregator's HTTP API)
is a deployment's to add, as one more module implementing the protocol.
"""

from identity.sms.outbox import OutboxMessage, OutboxSmsGateway
from identity.sms.protocol import SmsGateway, SmsUnavailable

__all__ = ["OutboxMessage", "OutboxSmsGateway", "SmsGateway", "SmsUnavailable"]
