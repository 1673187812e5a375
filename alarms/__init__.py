"""Budget alarms: evaluate budgets over the spend marts, claim each alarm once, notify chat.

rules.py      periods, run-rate forecast, anomaly rule (pure arithmetic)
spend.py      what a budget's scope spent, read from the marts
message.py    what on-call reads: one `Message` per alarm
state.py      SQLite: alarms claimed once, deliveries and their failures
notifier.py   the `Notifier` protocol, delivery with retries, channels from config
dingtalk.py, slack.py, webhook.py, console.py   one module per channel type (console: a log line, no network)
engine.py     one alarm run: evaluate, claim, send, resolve
"""
