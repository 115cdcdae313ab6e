"""What is sent to whom, and when: card rendering, the outbox dispatcher and the delivery
interface (console now; WeCom and DingTalk adapters plug in behind the same interface)."""
