"""Notices 通知, announcements 公告, meeting notices 会议通知 and polls 调查: the pure rules.

Who a notice is addressed to, what each recipient's receipt may become (sent → opened →
acknowledged, or defaulted at the deadline), when a recall is allowed, which confidentiality
levels may go through the system and to whom. No I/O: `services.notices` loads, calls these and
stores the result in one transaction.
"""
