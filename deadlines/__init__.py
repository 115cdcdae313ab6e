"""Time limits measured in working time: the working calendar and what is computed on it.

`deadlines.calendar` says which instants are working time in the organisation (the official
Chinese holiday schedule with its make-up working days 调休, the organisation's own overrides,
its working hours and timezone) and does arithmetic on working time. Step deadlines, reminders
催办 and supervision 督办 build on it.

Pure Python, like the approval core: no I/O, no database or platform imports, and it never
reads the wall clock. Every instant comes in as an argument.
"""
