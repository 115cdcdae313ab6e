"""Field check-ins 外勤签到: the pure core.

`checkins.geo` (distances and the WGS-84 / GCJ-02 conversion), `checkins.trust` (how much a
check-in can be believed, and why), `checkins.core` (trips, check-ins, judging one against the
other, the missing-check-in ladder and the 补卡 quota) and `checkins.links` (signed check-in
links). No I/O, no clock: every instant comes in as an argument. Storage, chat, HTTP and the
scheduler live at the edges (`storage.checkin_store`, `services.checkins`,
`handlers.checkins`, `bot.web.checkin_pages`, `bot.web.api_checkins`).
"""
